// Package leakcheck fails a test binary whose goroutines outlive its tests.
package leakcheck

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// patience is how long goroutines may take to exit after the last test.
// goleak.VerifyTestMain gives them about half a second, which a loaded CI
// machine running the race detector and other packages' brokers can
// exceed for goroutines that are already on their way out (a closed
// server's connection handlers, say). A real leak outlives any wait.
const patience = 10 * time.Second

// Main runs the tests, then fails the binary if any goroutine is still
// running after patience. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		var err error
		for deadline := time.Now().Add(patience); ; {
			if err = goleak.Find(); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "leakcheck: goroutines still running %v after the tests: %v\n", patience, err)
			code = 1
		}
	}
	os.Exit(code)
}
