// Command mqtt-authproxy is an MQTT v5 authentication and authorization proxy
// that gives any broker the security model of Azure Event Grid's MQTT broker.
//
// Subcommands: serve, check-config, version (see usage).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Set by the linker (make build).
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: mqtt-authproxy <command> [flags]

commands:
  serve         --config FILE   run the proxy
  check-config  --config FILE   validate a configuration (and its policy) without serving
  can-i         --config FILE   may a principal or token publish/subscribe/receive a topic, and why
  token         --config FILE   verify a token as serve would and print the identity it gives
  dev                           run a local issuer, Mosquitto and the proxy, and print a token
  version                       print version information

Every setting is also read from MQTT_AUTHPROXY_<KEY_PATH> (e.g.
MQTT_AUTHPROXY_UPSTREAM_ADDRESS) and from --set key.path=value.
`

// run dispatches a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "check-config":
		return runCheckConfig(rest, stdout, stderr)
	case "can-i":
		return runCanI(ctx, rest, stdout, stderr)
	case "token":
		return runToken(ctx, rest, stdout, stderr)
	case "dev":
		return runDev(ctx, rest, stdout, stderr)
	case "version":
		return runVersion(stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
	return 2
}
