package main

import (
	"fmt"
	"io"
	"runtime"
)

func runVersion(stdout io.Writer) int {
	fmt.Fprintf(stdout, "mqtt-authproxy %s (commit %s, %s)\n", version, commit, runtime.Version())
	return 0
}
