package token_test

import (
	"testing"

	"github.com/mqtt-authproxy/mqtt-authproxy/test/leakcheck"
)

// TestMain fails the package if any goroutine outlives the tests: key set
// refreshers, single-flight fetches and HTTP clients must all stop with
// their Verifier.
func TestMain(m *testing.M) {
	leakcheck.Main(m)
}
