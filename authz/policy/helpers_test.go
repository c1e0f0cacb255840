package policy

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// update rewrites golden files: go test ./authz/policy/ -update.
var update = flag.Bool("update", false, "rewrite golden files in testdata")

// Test resource ids.
const (
	sub1 = "00000000-0000-0000-0000-000000000001"
	sub2 = "00000000-0000-0000-0000-000000000002"
	ns1  = "/subscriptions/" + sub1 + "/resourceGroups/rg1/providers/Microsoft.EventGrid/namespaces/ns1"
)

// testConfig is the configuration of the in-memory tests.
func testConfig(files ...string) Config {
	cfg := DefaultConfig()
	cfg.Namespace = ns1
	cfg.Files = files
	return cfg
}

// loadString builds a Snapshot from in-memory files given as name, content
// pairs.
func loadString(t testing.TB, nameContent ...string) (*Snapshot, error) {
	t.Helper()
	var files []fileData
	var names []string
	for i := 0; i+1 < len(nameContent); i += 2 {
		files = append(files, fileData{name: nameContent[i], data: []byte(nameContent[i+1])})
		names = append(names, nameContent[i])
	}
	return build(testConfig(names...), files)
}

// mustLoad is loadString that fails the test on error.
func mustLoad(t testing.TB, nameContent ...string) *Snapshot {
	t.Helper()
	s, err := loadString(t, nameContent...)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return s
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// yamlPolicy joins lines into a policy file, so that tests can build
// policies from parts.
func yamlPolicy(lines ...string) string { return strings.Join(lines, "\n") + "\n" }
