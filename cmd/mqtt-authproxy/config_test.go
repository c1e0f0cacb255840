package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const testNamespace = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg1/providers/Microsoft.EventGrid/namespaces/ns1"

func validConfig(t *testing.T) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	policyFile := writeFile(t, dir, "policy.yaml", `topicSpaces:
  - name: telemetry
    topicTemplates: ["devices/${client.authenticationName}/#"]
roleAssignments:
  - principalId: 6f1d0000-0000-0000-0000-000000000001
    roleDefinitionName: EventGrid TopicSpaces Publisher
    scope: `+testNamespace+`
`)
	path = writeFile(t, dir, "config.yaml", `listeners:
  tcp: "127.0.0.1:0"
upstream:
  address: "127.0.0.1:1884"
  dialTimeout: 3s
auth:
  entra:
    tenants: ["11111111-2222-3333-4444-555555555555"]
policy:
  namespace: `+testNamespace+`
  files: ["`+policyFile+`"]
`)
	return dir, path
}

// SPEC 6, 7: YAML file, then MQTT_AUTHPROXY_* environment, then --set.
func TestLoadConfigPrecedence(t *testing.T) {
	_, path := validConfig(t)
	cfg, err := loadConfig(commonFlags{config: path})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if cfg.Upstream.Address != "127.0.0.1:1884" || cfg.Upstream.DialTimeout != 3*time.Second {
		t.Errorf("file values not applied: %+v", cfg.Upstream)
	}
	if cfg.Limits.MaxPacketSize != 524288 || cfg.Session.Isolation != "prefix" || cfg.Auth.ClockSkew != 60*time.Second {
		t.Errorf("defaults not kept: limits %+v session %+v skew %s", cfg.Limits, cfg.Session, cfg.Auth.ClockSkew)
	}

	t.Setenv("MQTT_AUTHPROXY_UPSTREAM_ADDRESS", "127.0.0.1:2000")
	t.Setenv("MQTT_AUTHPROXY_LIMITS_MAXPACKETSIZE", "65536")
	t.Setenv("MQTT_AUTHPROXY_SESSION_WILLONEXPIRY", "false")
	cfg, err = loadConfig(commonFlags{config: path, sets: []string{"limits.maxPacketSize=16384"}})
	if err != nil {
		t.Fatalf("load with env: %v", err)
	}
	if cfg.Upstream.Address != "127.0.0.1:2000" {
		t.Errorf("env did not override the file: upstream.address = %q", cfg.Upstream.Address)
	}
	if cfg.Session.WillOnExpiry {
		t.Errorf("env did not override a default: session.willOnExpiry = true")
	}
	if cfg.Limits.MaxPacketSize != 16384 {
		t.Errorf("--set did not override env: limits.maxPacketSize = %d", cfg.Limits.MaxPacketSize)
	}
}

// STYLE 33: unknown keys are errors, not silently ignored.
func TestLoadConfigUnknownKey(t *testing.T) {
	dir, _ := validConfig(t)
	path := writeFile(t, dir, "typo.yaml", "upstream:\n  adress: 127.0.0.1:1884\n")
	_, err := loadConfig(commonFlags{config: path})
	if err == nil || !strings.Contains(err.Error(), "adress") {
		t.Fatalf("typo accepted: err = %v", err)
	}
}

// STYLE 20, 35: check-config prints every problem with its key path in one
// run, and exits 1.
func TestCheckConfigReportsAllProblems(t *testing.T) {
	dir, _ := validConfig(t)
	path := writeFile(t, dir, "bad.yaml", `upstream:
  address: "no-port"
  dialTimeout: -1s
session:
  isolation: sometimes
limits:
  maxPacketSize: 10
`)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"check-config", "--config", path}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errb.String())
	}
	for _, want := range []string{"upstream.address", "upstream.dialTimeout", "session.isolation", "limits.maxPacketSize", "policy", "auth"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("check-config output does not name %s:\n%s", want, errb.String())
		}
	}
}

// check-config goes on past a stage that fails: one run names the bad
// value, the policy file that is missing and the local file serve could
// not read. It also prints the policy's warnings, which serve logs.
func TestCheckConfigReportsEveryStage(t *testing.T) {
	dir, _ := validConfig(t)
	emptyPolicy := writeFile(t, dir, "empty.yaml", "topicSpaces: []\n")
	tests := []struct {
		name, config string
		wantCode     int
		want         []string
	}{
		{"a problem in each stage", `upstream:
  address: "127.0.0.1:1884"
  passwordFile: "` + filepath.Join(dir, "no-password") + `"
session:
  isolation: sometimes
auth:
  entra: {tenants: ["11111111-2222-3333-4444-555555555555"]}
policy:
  namespace: ` + testNamespace + `
  files: ["` + filepath.Join(dir, "no-policy.yaml") + `"]
`, 1, []string{"invalid config", "session.isolation", "invalid policy", "no-policy.yaml", "unusable files", "no-password"}},
		{"a policy that grants nothing", `upstream: {address: "127.0.0.1:1884"}
auth:
  entra: {tenants: ["11111111-2222-3333-4444-555555555555"]}
policy:
  namespace: ` + testNamespace + `
  files: ["` + emptyPolicy + `"]
`, 0, []string{"policy warning"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, dir, "config.yaml", tt.config)
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"check-config", "--config", path}, &out, &errb); code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, errb.String())
			}
			for _, want := range tt.want {
				if !strings.Contains(errb.String(), want) {
					t.Errorf("check-config output does not name %q:\n%s", want, errb.String())
				}
			}
		})
	}
}

// A duration written as a bare number is refused with its key, not read as
// nanoseconds (a dial timeout of 5 ns fails every CONNECT with 0x88); 0 is
// still zero, and the environment's strings need a unit anyway.
func TestDurationsNeedAUnit(t *testing.T) {
	dir, _ := validConfig(t)
	tests := []struct {
		yaml    string
		wantErr string
	}{
		{"upstream:\n  dialTimeout: 5\n", "dialTimeout"},
		{"limits:\n  connectTimeout: 2.5\n", "connectTimeout"},
		{"auth:\n  clockSkew: 0\n", ""},
		{"upstream:\n  dialTimeout: 5s\n", ""},
	}
	for _, tt := range tests {
		path := writeFile(t, dir, "d.yaml", tt.yaml)
		_, err := decodeConfig(commonFlags{config: path})
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%q: %v", tt.yaml, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "no unit") {
			t.Errorf("%q: err = %v, want one naming %s and the missing unit", tt.yaml, err, tt.wantErr)
		}
	}
}

// SPEC 6: check-config reads the local files serve would read and names
// each one it could not use, instead of passing a configuration serve
// rejects (or never becomes ready with).
func TestCheckConfigReadsLocalFiles(t *testing.T) {
	dir, path := validConfig(t)
	missing := filepath.Join(dir, "missing")
	garbage := writeFile(t, dir, "garbage.pem", "not a certificate\n")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"check-config", "--config", path,
		"--set", "upstream.passwordFile=" + missing,
		"--set", "upstream.tls.enabled=true", "--set", "upstream.tls.caFile=" + garbage,
		"--set", "listeners.tls.address=127.0.0.1:0", "--set", "listeners.tls.certFile=" + missing, "--set", "listeners.tls.keyFile=" + missing,
		"--set", "listeners.websocket.address=127.0.0.1:0", "--set", "listeners.websocket.certFile=" + garbage, "--set", "listeners.websocket.keyFile=" + garbage,
	}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stdout %q stderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"upstream.passwordFile", "upstream.tls.caFile", "listeners.tls", "listeners.websocket"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("check-config output does not name %s:\n%s", want, errb.String())
		}
	}
}

// A generic issuer's key file that is missing or holds no key is named.
func TestCheckConfigReadsKeyFiles(t *testing.T) {
	dir, _ := validConfig(t)
	empty := writeFile(t, dir, "empty.json", `{"keys": []}`)
	path := writeFile(t, dir, "issuers.yaml", `auth:
  issuers:
    - issuer: https://a.example
      jwksFile: `+filepath.Join(dir, "missing.json")+`
    - issuer: https://b.example
      jwksFile: `+empty+`
policy:
  namespace: `+testNamespace+`
  files: ["`+filepath.Join(dir, "policy.yaml")+`"]
`)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check-config", "--config", path}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errb.String())
	}
	for _, want := range []string{"auth.issuers[0].jwksFile", "auth.issuers[1].jwksFile"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("check-config output does not name %s:\n%s", want, errb.String())
		}
	}
}

func TestCheckConfigValid(t *testing.T) {
	_, path := validConfig(t)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check-config", "--config", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, errb.String())
	}
	if !strings.Contains(out.String(), "OK") {
		t.Errorf("output %q does not say OK", out.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errb); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(errb.String(), "usage") {
		t.Errorf("no usage printed: %q", errb.String())
	}
}
