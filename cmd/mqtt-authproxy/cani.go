package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/policy"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
)

const canIUsage = `usage: mqtt-authproxy can-i --config FILE (--token TOKEN|- | --principal ID [--groups G,...] [--app-roles R,...] [--attr KEY=VALUE ...]) [--client-id ID] ACTION TOPIC

ACTION is publish, subscribe or receive; TOPIC is a topic name (a filter for
subscribe). The answer says which assignment, role, scope, topic space and
template decided, or why nothing granted it. Exit code: 0 allowed, 1 denied,
2 the question could not be asked.
`

// runCanI answers an authorization question offline, the `kubectl auth
// can-i` way, from the same configuration and policy files serve uses.
func runCanI(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("can-i", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, canIUsage); fs.PrintDefaults() }
	var f commonFlags
	f.register(fs)
	tok := fs.String("token", "", "a token, or - to read it from stdin: its verified claims are the identity (fetches the issuer's keys)")
	principal := fs.String("principal", "", "principal id (object id) to ask for, instead of --token")
	groups := fs.StringSlice("groups", nil, "group object ids of the principal")
	appRoles := fs.StringSlice("app-roles", nil, "app roles of the principal (assignable as approle:<name>)")
	attrs := fs.StringArray("attr", nil, "client attribute key=value for ${client.attributes.<key>} (repeatable)")
	clientID := fs.String("client-id", "", "client id for ${client.clientId}")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 2 || (*tok == "") == (*principal == "") {
		fs.Usage()
		return 2
	}
	action, ok := parseAction(fs.Arg(0))
	if !ok {
		fmt.Fprintf(stderr, "unknown action %q: want publish, subscribe or receive\n", fs.Arg(0))
		return 2
	}
	cfg, err := loadConfig(f)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	snap, err := policy.Load(cfg.Policy)
	if err != nil {
		fmt.Fprintf(stderr, "invalid policy:\n%v\n", err)
		return 2
	}
	var id *authz.Identity
	if *tok != "" {
		raw, err := tokenArg(*tok, os.Stdin)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		vctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if id, err = identityFromToken(vctx, cfg.Auth, cfg.Limits.MaxAuthDataSize, raw, stderr); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
	} else {
		id = &authz.Identity{AuthenticationName: *principal, Groups: *groups, AppRoles: *appRoles, Attributes: map[string][]string{}}
		for _, kv := range *attrs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				fmt.Fprintf(stderr, "--attr %q: want key=value\n", kv)
				return 2
			}
			id.Attributes[k] = append(id.Attributes[k], v)
		}
	}
	e := snap.Explain(id, *clientID, action, fs.Arg(1))
	fmt.Fprint(stdout, e.String())
	if !e.Decision.Allowed {
		return 1
	}
	return 0
}

func parseAction(s string) (authz.Action, bool) {
	for _, a := range []authz.Action{authz.Publish, authz.Subscribe, authz.Receive} {
		if strings.EqualFold(s, a.String()) {
			return a, true
		}
	}
	return 0, false
}

// identityFromToken verifies tok against the configured issuers exactly as
// serve would, so can-i never trusts claims the proxy would refuse.
// The token is tried with each method an issuer accepts (OAUTH2-JWT
// first): its issuer decides which one a client would have to use.
func identityFromToken(ctx context.Context, cfg token.Config, maxSize int, tok string, stderr io.Writer) (*authz.Identity, error) {
	v, err := startVerifier(ctx, cfg, maxSize, stderr)
	if err != nil {
		return nil, err
	}
	var id *authz.Identity
	for _, method := range []string{token.MethodOAuth2JWT, token.MethodCustomJWT} {
		if !v.SupportsMethod(method) {
			continue
		}
		if id, err = v.Verify(ctx, method, []byte(strings.TrimSpace(tok))); !errors.Is(err, token.ErrMethod) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("token refused: %s", token.Reason(err))
	}
	return id, nil
}

// keyWait bounds how long can-i and token wait for the issuers' keys.
var keyWait = 15 * time.Second

// startVerifier runs a verifier for cfg until ctx ends and waits, at most
// keyWait, for the issuers' keys. An issuer whose keys cannot be had is
// reported on stderr, not fatal: the token may well be another issuer's,
// and Verify says so if it is not.
func startVerifier(ctx context.Context, cfg token.Config, maxSize int, stderr io.Writer) (*token.Verifier, error) {
	v, err := token.NewVerifier(cfg, token.Options{MaxTokenSize: maxSize})
	if err != nil {
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	go func() { _ = v.Run(ctx) }()
	wctx, cancel := context.WithTimeout(ctx, keyWait)
	defer cancel()
	if err := v.WaitReady(wctx); err != nil {
		fmt.Fprintln(stderr, "warning: not every issuer's signing keys could be fetched:", err)
	}
	return v, nil
}
