package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The configurations the repository ships pass check-config as they are,
// but for where the policy file lives: deploy/config.example.yaml with the
// sidecar's policy, and the sidecar manifest's ConfigMap (config.yaml and
// policy.yaml, mounted at /etc/mqtt-authproxy in the pod).
func TestShippedConfigsPassCheckConfig(t *testing.T) {
	manifest, err := os.ReadFile("../../deploy/kubernetes/sidecar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var configMap struct {
		Kind string            `yaml:"kind"`
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.NewDecoder(bytes.NewReader(manifest)).Decode(&configMap); err != nil || configMap.Kind != "ConfigMap" {
		t.Fatalf("the manifest's first document: kind %q, err %v; want the ConfigMap", configMap.Kind, err)
	}
	example, err := os.ReadFile("../../deploy/config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	policy := writeFile(t, dir, "policy.yaml", configMap.Data["policy.yaml"])
	for name, config := range map[string]string{
		"deploy/config.example.yaml": string(example),
		"sidecar.yaml's config.yaml": configMap.Data["config.yaml"],
	} {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(config, "/etc/mqtt-authproxy/policy.yaml") {
				t.Fatalf("%s no longer names /etc/mqtt-authproxy/policy.yaml; update this test", name)
			}
			path := writeFile(t, dir, "config.yaml", strings.ReplaceAll(config, "/etc/mqtt-authproxy/policy.yaml", policy))
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"check-config", "--config", path}, &out, &errb); code != 0 {
				t.Fatalf("check-config exit %d:\n%s", code, errb.String())
			}
			if !strings.HasPrefix(out.String(), "configuration OK") {
				t.Errorf("check-config printed %q", out.String())
			}
		})
	}
}
