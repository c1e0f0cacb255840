package test

import (
	"testing"

	"github.com/mqtt-authproxy/mqtt-authproxy/test/leakcheck"
)

// TestMain fails the package if any goroutine outlives the tests: every
// connection the proxy served (two pumps each, re-authentication checks,
// expiry timers), every client and every test server must be gone once its
// test cleaned up.
func TestMain(m *testing.M) {
	leakcheck.Main(m)
}
