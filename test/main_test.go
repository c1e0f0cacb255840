package test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// connection the proxy served (two pumps each, re-authentication checks,
// expiry timers), every client and every test server must be gone once its
// test cleaned up.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
