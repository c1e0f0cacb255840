package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
)

const tokenUsage = `usage: mqtt-authproxy token --config FILE [--method OAUTH2-JWT|CUSTOM-JWT] TOKEN|-

Verifies TOKEN (or a token read from standard input with -) exactly as serve
would and prints the identity the proxy would give it: principal, issuer,
tenant, groups, app roles, attributes and expiry — never the token itself.
Exit code: 0 valid, 1 refused (with the reason a client would get), 2 usage.
`

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("token", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, tokenUsage); fs.PrintDefaults() }
	var f commonFlags
	f.register(fs)
	method := fs.String("method", token.MethodOAuth2JWT, "authentication method the token would arrive with")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	raw, err := tokenArg(fs.Arg(0), os.Stdin)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cfg, err := loadConfig(f)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	v, err := startVerifier(ctx, cfg.Auth, cfg.Limits.MaxAuthDataSize, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if !v.SupportsMethod(*method) {
		// serve refuses it before looking at the token (SPEC 2).
		fmt.Fprintf(stdout, "refused: authentication method %q is not accepted by any issuer (a client gets CONNACK 0x8C)\n", *method)
		return 1
	}
	id, err := v.Verify(ctx, *method, []byte(strings.TrimSpace(raw)))
	if err != nil {
		fmt.Fprintf(stdout, "refused: %s (a client gets CONNACK %s)\n", token.Reason(err), connackFor(err))
		return 1
	}
	fmt.Fprintf(stdout, "valid\n  authentication name: %s\n  issuer:              %s\n", id.AuthenticationName, id.Issuer)
	if id.TenantID != "" {
		fmt.Fprintf(stdout, "  tenant:              %s\n", id.TenantID)
	}
	fmt.Fprintf(stdout, "  expires:             %s (in %s)\n", id.ExpiresAt.UTC().Format(time.RFC3339), time.Until(id.ExpiresAt).Round(time.Second))
	fmt.Fprintf(stdout, "  groups:              %s\n", listOrNone(id.Groups))
	if id.GroupsOverage {
		fmt.Fprintln(stdout, "  note:                groups overage: group assignments do not apply, deny assignments to groups do")
	}
	fmt.Fprintf(stdout, "  app roles:           %s\n", listOrNone(id.AppRoles))
	keys := make([]string, 0, len(id.Attributes))
	for k := range id.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(stdout, "  attribute %s = %s\n", k, strings.Join(id.Attributes[k], ", "))
	}
	return 0
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}

func connackFor(err error) string {
	if token.Label(err) == token.Label(token.ErrKeysUnavailable) {
		return "0x88"
	}
	return "0x87"
}

// tokenArg is a token given on the command line, or, for "-", the first line
// of stdin: a token in the arguments is visible to other users (ps) and
// kept in shell history.
func tokenArg(arg string, stdin io.Reader) (string, error) {
	if arg != "-" {
		return arg, nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read token from stdin: %w", err)
	}
	return strings.TrimSpace(line), nil
}
