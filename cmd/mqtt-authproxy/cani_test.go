package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token/tokentest"
)

// SPEC 3, issue 4: can-i answers with the deciding assignment, role, scope
// and template, or why nothing matched; exit 0 allowed, 1 denied.
func TestCanI(t *testing.T) {
	_, path := validConfig(t)
	const p = "6f1d0000-0000-0000-0000-000000000001"
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"allowed publish names the decision", []string{"--principal", p, "publish", "devices/" + p + "/telemetry"}, 0,
			[]string{"allowed", "telemetry", "EventGrid TopicSpaces Publisher", testNamespace, "devices/" + p + "/#"}},
		{"other principal's topic denied", []string{"--principal", p, "publish", "devices/someone-else/telemetry"}, 1,
			[]string{"denied (no_grant)"}},
		{"subscribe needs the subscriber role", []string{"--principal", p, "subscribe", "devices/" + p + "/#"}, 1,
			[]string{"denied", "does not grant the subscribe data action"}},
		{"unknown action", []string{"--principal", p, "delete", "x"}, 2, nil},
		{"neither token nor principal", []string{"publish", "x"}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), append([]string{"can-i", "--config", path}, tt.args...), &out, &errb)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out.String(), errb.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output does not contain %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// can-i --token verifies the token against the configured issuer before
// using its claims.
func TestCanIWithToken(t *testing.T) {
	idp, err := tokentest.New()
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	_, path := validConfig(t)
	const tid, p = "11111111-2222-3333-4444-555555555555", "6f1d0000-0000-0000-0000-000000000001"
	good, err := idp.MintEntra(tid, p, 2, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := idp.MintEntra(tid, p, 2, nil, -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"can-i", "--config", path, "--set", "auth.entra.authority=" + idp.URL()}
	var out, errb bytes.Buffer
	if code := run(context.Background(), append(base, "--token", good, "publish", "devices/"+p+"/x"), &out, &errb); code != 0 {
		t.Fatalf("valid token: exit %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), append(base, "--token", expired, "publish", "devices/"+p+"/x"), &out, &errb); code != 2 || !strings.Contains(errb.String(), "token expired") {
		t.Fatalf("expired token: exit %d, stderr %q; want 2 and 'token expired'", code, errb.String())
	}
	if strings.Contains(errb.String(), expired[:30]) {
		t.Errorf("the token is echoed on stderr")
	}

	// --token - reads it from stdin, out of ps and shell history.
	withStdin(t, good+"\n")
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), append(base, "--token", "-", "publish", "devices/"+p+"/x"), &out, &errb); code != 0 {
		t.Fatalf("token from stdin: exit %d\n%s%s", code, out.String(), errb.String())
	}
}

// can-i --token takes a CUSTOM-JWT issuer's token as serve does (it tried
// OAUTH2-JWT only), and answers for it although another configured issuer
// is unreachable (it gave up, waiting for every issuer's keys).
func TestCanIWithCustomJWTAndAnUnreachableIssuer(t *testing.T) {
	idp, err := tokentest.New()
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	keyWait = 500 * time.Millisecond
	t.Cleanup(func() { keyWait = 15 * time.Second })
	dir, _ := validConfig(t)
	policy := writeFile(t, dir, "custom-policy.yaml", `topicSpaces:
  - name: telemetry
    topicTemplates: ["devices/${client.authenticationName}/#"]
roleAssignments:
  - principalId: device-7
    roleDefinitionName: EventGrid TopicSpaces Publisher
    scope: `+testNamespace+`
`)
	path := writeFile(t, dir, "custom.yaml", `upstream: {address: "127.0.0.1:1884"}
auth:
  entra: {tenants: ["11111111-2222-3333-4444-555555555555"], authority: "http://127.0.0.1:1"}
  issuers:
    - {issuer: "`+idp.URL()+`", discovery: true, audiences: ["mqtt://custom"], method: CUSTOM-JWT}
policy:
  namespace: `+testNamespace+`
  files: ["`+policy+`"]
`)
	tok, err := idp.Mint(map[string]any{"iss": idp.URL(), "sub": "device-7", "aud": "mqtt://custom", "exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"can-i", "--config", path, "--token", tok, "publish", "devices/device-7/x"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "warning: not every issuer's signing keys could be fetched") {
		t.Errorf("the unreachable issuer is not reported: %q", errb.String())
	}
}

// withStdin makes os.Stdin read s until the test ends.
func withStdin(t *testing.T, s string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString(s); err != nil {
		t.Fatal(err)
	}
	w.Close()
	old := os.Stdin
	os.Stdin = r
	t.Cleanup(func() { os.Stdin = old; r.Close() })
}

// The token subcommand prints the identity serve would give a token, and the
// client-visible reason for a refused one, never the token.
func TestTokenCommand(t *testing.T) {
	idp, err := tokentest.New()
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	_, path := validConfig(t)
	const tid, p = "11111111-2222-3333-4444-555555555555", "6f1d0000-0000-0000-0000-000000000001"
	good, _ := idp.MintEntra(tid, p, 1, map[string]any{"groups": []string{"g1"}, "roles": []string{"Device"}, "site": "berlin"}, time.Hour)
	bad, _ := idp.MintEntra(tid, p, 2, map[string]any{"aud": "https://management.azure.com/"}, time.Hour)
	base := []string{"token", "--config", path, "--set", "auth.entra.authority=" + idp.URL()}
	var out, errb bytes.Buffer
	if code := run(context.Background(), append(base, good), &out, &errb); code != 0 {
		t.Fatalf("valid token: exit %d\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"authentication name: " + p, "tenant:              " + tid, "groups:              g1", "app roles:           Device", "attribute site = berlin"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run(context.Background(), append(base, bad), &out, &errb); code != 1 || !strings.Contains(out.String(), "audience not accepted") {
		t.Errorf("wrong audience: exit %d, output %q", code, out.String())
	}
	if strings.Contains(out.String()+errb.String(), bad[:30]) {
		t.Error("the token is echoed")
	}
	// SPEC 2: a method no issuer accepts is refused before the token.
	out.Reset()
	if code := run(context.Background(), append(base, "--method", "SCRAM-SHA-1", good), &out, &errb); code != 1 || !strings.Contains(out.String(), "CONNACK 0x8C") {
		t.Errorf("unsupported method: exit %d, output %q, want 1 and CONNACK 0x8C", code, out.String())
	}
}
