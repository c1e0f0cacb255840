package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token/tokentest"
	"github.com/mqtt-authproxy/mqtt-authproxy/proxy"
	"github.com/mqtt-authproxy/mqtt-authproxy/test/harness"
)

const (
	devTenant    = "00000000-0000-0000-0000-00000000de00"
	devPrincipal = "00000000-0000-0000-0000-0000000000d1"
	devNamespace = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/dev/providers/Microsoft.EventGrid/namespaces/dev"
)

// devPolicy grants the dev principal publish and subscribe on its own
// devices/<name>/# tree, and subscribe on alerts/#.
const devPolicy = `topicSpaces:
  - name: own-devices
    topicTemplates: ["devices/${client.authenticationName}/#"]
  - name: alerts
    topicTemplates: ["alerts/#"]
roleAssignments:
  - principalId: ` + devPrincipal + `
    roleDefinitionName: EventGrid TopicSpaces Publisher
    scope: ` + devNamespace + `/topicSpaces/own-devices
  - principalId: ` + devPrincipal + `
    roleDefinitionName: EventGrid TopicSpaces Subscriber
    scope: ` + devNamespace + `
`

// runDev starts a loopback identity provider (Entra-shaped), a Mosquitto on
// a free loopback port and the proxy in front of it, prints a token and
// client commands, and serves until interrupted: the `make run` experience.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("dev", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:1885", "MQTT listener of the proxy")
	adminAddr := fs.String("admin", "127.0.0.1:9090", "admin listener (/metrics /healthz /readyz)")
	ttl := fs.Duration("token-ttl", time.Hour, "lifetime of the printed token")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level")
	auditDest := fs.String("audit-log", "stderr", auditLogHelp)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logs, err := newProcessLogs(stderr, *logFormat, *logLevel, *auditDest)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	defer logs.Close()
	log := logs.log
	dir, err := os.MkdirTemp("", "mqtt-authproxy-dev-")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)

	idp, err := tokentest.New()
	if err != nil {
		fmt.Fprintln(stderr, "start identity provider:", err)
		return 1
	}
	defer idp.Close()
	broker, err := harness.StartMosquittoIn(dir)
	if err != nil {
		fmt.Fprintln(stderr, "start mosquitto:", err)
		return 1
	}
	defer broker.Stop()
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(devPolicy), 0o600); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}

	cfg := proxy.DefaultConfig()
	cfg.Listeners.TCP = *listen
	cfg.Admin.Address = *adminAddr
	cfg.Upstream.Address = broker.Addr
	cfg.Auth = token.DefaultConfig()
	cfg.Auth.Entra.Tenants = []string{devTenant}
	cfg.Auth.Entra.Authority = idp.URL()
	cfg.Policy.Namespace = devNamespace
	cfg.Policy.Files = []string{policyFile}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	tok, err := idp.MintEntra(devTenant, devPrincipal, 2, nil, *ttl)
	if err != nil {
		fmt.Fprintln(stderr, "mint token:", err)
		return 1
	}

	ready := make(chan listening, 1)
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, cfg, logs, 5*time.Second, ready) }()
	select {
	case b := <-ready:
		host, port, _ := net.SplitHostPort(b.MQTT)
		fmt.Fprintf(stdout, `
mqtt-authproxy dev stack is running (Ctrl-C stops it)
  proxy      mqtt://%s   (admin http://%s/metrics)
  mosquitto  %s        (upstream, loopback only)
  issuer     %s  (Entra-shaped, tenant %s)
  principal  %s
  policy     %s

TOKEN=%s

# subscribe (allowed: the principal holds Subscriber on the namespace)
mosquitto_sub -h %s -p %s -V 5 -i sub1 -D connect authentication-method OAUTH2-JWT -D connect authentication-data "$TOKEN" -t 'devices/%s/#' -v

# publish (allowed on devices/<principal>/#, denied elsewhere)
mosquitto_pub -h %s -p %s -V 5 -i pub1 -D connect authentication-method OAUTH2-JWT -D connect authentication-data "$TOKEN" -q 1 -t 'devices/%s/telemetry' -m hello
`, b.MQTT, b.Admin, broker.Addr, idp.URL(), devTenant, devPrincipal, policyFile, tok,
			host, port, devPrincipal, host, port, devPrincipal)
	case err := <-errc:
		log.Error("serve failed", "err", err)
		return 1
	}
	if err := <-errc; err != nil {
		log.Error("serve failed", "err", err)
		return 1
	}
	return 0
}
