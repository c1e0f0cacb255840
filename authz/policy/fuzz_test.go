package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
)

// FuzzLoad feeds arbitrary bytes to the loader as a policy file: it must
// not panic, and returns either an error or a usable Snapshot, never both
// or neither (fail closed).
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "errors", "*.txt"))
	az, _ := filepath.Glob(filepath.Join("testdata", "az", "*"))
	for _, p := range append(seeds, az...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		input, _, _ := strings.Cut(string(data), "\n----\n")
		f.Add([]byte(input))
	}
	f.Add([]byte(storePolicy))
	f.Add([]byte(policyWith("roleAssignments:", assign("p", RolePublisher, ns1))))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := build(testConfig("fuzz.yaml"), []fileData{{name: "fuzz.yaml", data: data}})
		if (s == nil) == (err == nil) {
			t.Fatalf("got snapshot %v and error %v", s, err)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		_ = s.Summary()
		id := &authz.Identity{AuthenticationName: "p", Groups: []string{"g"}, AppRoles: []string{"r"},
			Attributes: map[string][]string{"site": {"a", "b"}}}
		g := s.Grants(id, "c")
		for _, q := range []string{"a/b", "#", "p/x", "$share/g/+/#"} {
			g.Publish(q)
			g.Subscribe(q)
			g.Receive(q)
			_ = s.Explain(id, "c", authz.Subscribe, q).String()
		}
	})
}
