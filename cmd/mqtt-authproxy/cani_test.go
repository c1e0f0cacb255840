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
}
