package proxy

import (
	"testing"

	"github.com/mqtt-authproxy/mqtt-authproxy/test/leakcheck"
)

// TestMain fails the package if any goroutine outlives the tests.
func TestMain(m *testing.M) {
	leakcheck.Main(m)
}
