package main

import (
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/policy"
)

// runCheckConfig runs exactly the validation serve runs (STYLE 35) —
// configuration and policy files — without touching the network.
func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("check-config", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var f commonFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(f)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	snap, err := policy.Load(cfg.Policy)
	if err != nil {
		fmt.Fprintf(stderr, "invalid policy:\n%v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "configuration OK (%s)\n", snap.Summary())
	return 0
}
