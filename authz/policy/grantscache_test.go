package policy

import (
	"fmt"
	"testing"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
)

// Connections whose grants cannot differ share one compiled copy; any input
// a template or an assignment depends on separates them, so a cached copy
// never grants one identity what only another may do.
func TestGrantsCacheSharesOnlyEqualGrants(t *testing.T) {
	withClientID := mustLoad(t, "p.yaml", policyWith("roleAssignments:",
		assign("p", RolePublisher, ns1), assign("g1", RoleSubscriber, ns1), assign("approle:r1", RoleSubscriber, ns1)))
	noClientID := mustLoad(t, "p.yaml", `topicSpaces:
  - name: sites
    topicTemplates: ["sites/${client.attributes.site}/#"]
roleAssignments:
`+assign("p", RolePublisher, ns1)+"\n")

	base := func() *authz.Identity {
		return &authz.Identity{AuthenticationName: "p", Groups: []string{"g1"}, AppRoles: []string{"r1"},
			Attributes: map[string][]string{"site": {"a"}, "unused": {"x"}}}
	}
	tests := []struct {
		name          string
		s             *Snapshot
		mutate        func(*authz.Identity)
		clientA, cliB string
		shared        bool
		action        authz.Action
		topic         string
		wantA, wantB  bool
	}{
		{"same identity, client id not in templates", noClientID, func(*authz.Identity) {}, "c1", "c2", true,
			authz.Publish, "sites/a/x", true, true},
		{"unused attribute differs", noClientID, func(id *authz.Identity) { id.Attributes["unused"] = []string{"y"} }, "c1", "c1", true,
			authz.Publish, "sites/a/x", true, true},
		{"client id in templates", withClientID, func(*authz.Identity) {}, "c1", "c2", false,
			authz.Publish, "clients/c1/x", true, false},
		{"attribute value", noClientID, func(id *authz.Identity) { id.Attributes["site"] = []string{"b"} }, "c1", "c1", false,
			authz.Publish, "sites/a/x", true, false},
		{"attribute absent", noClientID, func(id *authz.Identity) { delete(id.Attributes, "site") }, "c1", "c1", false,
			authz.Publish, "sites/a/x", true, false},
		{"attribute split differently", noClientID, func(id *authz.Identity) { id.Attributes["site"] = []string{"a", ""} }, "c1", "c1", false,
			authz.Publish, "sites/a/x", true, false},
		{"group lost", withClientID, func(id *authz.Identity) { id.Groups = nil }, "c1", "c1", false,
			authz.Subscribe, "broadcast/x", true, true}, // still subscriber through the app role
		{"group and app role lost", withClientID, func(id *authz.Identity) { id.Groups, id.AppRoles = nil, nil }, "c1", "c1", false,
			authz.Subscribe, "broadcast/x", true, false},
		{"groups overage", withClientID, func(id *authz.Identity) { id.GroupsOverage, id.AppRoles = true, nil }, "c1", "c1", false,
			authz.Subscribe, "broadcast/x", true, false},
		{"other principal", noClientID, func(id *authz.Identity) { id.AuthenticationName = "q" }, "c1", "c1", false,
			authz.Publish, "sites/a/x", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := base(), base()
			tt.mutate(b)
			ga := tt.s.Grants(a, tt.clientA)
			gb := tt.s.Grants(b, tt.cliB)
			if (ga == gb) != tt.shared {
				t.Errorf("shared = %v, want %v", ga == gb, tt.shared)
			}
			if got := decide1(ga, tt.action, tt.topic).Allowed; got != tt.wantA {
				t.Errorf("first identity: %s %q allowed = %v, want %v", tt.action, tt.topic, got, tt.wantA)
			}
			if got := decide1(gb, tt.action, tt.topic).Allowed; got != tt.wantB {
				t.Errorf("second identity: %s %q allowed = %v, want %v", tt.action, tt.topic, got, tt.wantB)
			}
			// The cached copy decides as a fresh compilation would.
			if got, want := decide1(tt.s.Grants(b, tt.cliB), tt.action, tt.topic), decide1(tt.s.compile(b, tt.cliB), tt.action, tt.topic); got != want {
				t.Errorf("cached %+v, compiled %+v", got, want)
			}
		})
	}
}

// The cache holds at most grantsCacheSize compiled Grants whatever number of
// identities connect.
func TestGrantsCacheBounded(t *testing.T) {
	s := mustLoad(t, "p.yaml", policyWith("roleAssignments:", assign("p", RolePublisher, ns1)))
	for i := range 3 * grantsCacheSize {
		s.Grants(&authz.Identity{AuthenticationName: fmt.Sprint("p", i)}, "c")
		s.grants.mu.Lock()
		n := len(s.grants.m)
		s.grants.mu.Unlock()
		if n > grantsCacheSize {
			t.Fatalf("after %d identities: %d cached, limit %d", i+1, n, grantsCacheSize)
		}
	}
}
