package packetcodec

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports guards the dependency rule (STYLE 2): packetcodec imports
// only the standard library and paho's packets.
func TestImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := map[string]bool{
		"github.com/eclipse/paho.golang/packets":               true,
		"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec": true,
	}
	for _, dep := range strings.Fields(string(out)) {
		if !allowed[dep] {
			t.Errorf("got dependency %s, want only the standard library and paho packets", dep)
		}
	}
}
