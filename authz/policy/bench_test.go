package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
)

// benchPolicy has 10 topic spaces × 10 templates and 10,000 role
// assignments, 9,990 of them for other principals; the benchmarked
// principal holds publish and subscribe on every topic space through its
// own assignments and a group.
func benchPolicy(tb testing.TB) (*Snapshot, *authz.Identity) {
	tb.Helper()
	var b strings.Builder
	b.WriteString("topicSpaces:\n")
	for i := range 10 {
		fmt.Fprintf(&b, "  - name: space%d\n    topicTemplates:\n", i)
		for j := range 10 {
			switch j % 3 {
			case 0:
				fmt.Fprintf(&b, "      - \"s%d/devices/${client.authenticationName}/t%d/#\"\n", i, j)
			case 1:
				fmt.Fprintf(&b, "      - \"s%d/sites/${client.attributes.site}/t%d/+\"\n", i, j)
			default:
				fmt.Fprintf(&b, "      - \"s%d/broadcast/t%d/+/x/#\"\n", i, j)
			}
		}
	}
	b.WriteString("roleAssignments:\n")
	const me = "6f1d0000-0000-4000-8000-00000000beef"
	const group = "99999999-0000-4000-8000-00000000beef"
	for i := range 10000 {
		principal, role := fmt.Sprintf("6f1d0000-0000-4000-8000-%012d", i), RolePublisher
		if i%2 == 1 {
			role = RoleSubscriber
		}
		switch {
		case i < 10:
			principal, role = me, RolePublisher
		case i < 20:
			principal, role = group, RoleSubscriber
		}
		fmt.Fprintf(&b, "  - principalId: %s\n    roleDefinitionName: %s\n    scope: %s/topicSpaces/space%d\n", principal, role, ns1, i%10)
	}
	s, err := loadString(tb, "bench.yaml", b.String())
	if err != nil {
		tb.Fatal(err)
	}
	id := &authz.Identity{
		AuthenticationName: me,
		Groups:             []string{"other-group", group},
		AppRoles:           []string{"Reader"},
		Attributes:         map[string][]string{"site": {"berlin"}},
	}
	return s, id
}

// BenchmarkGrantsCompile is the per-connection cost (CONNECT, re-auth,
// reload re-check) of an identity whose grants are not cached.
func BenchmarkGrantsCompile(b *testing.B) {
	s, id := benchPolicy(b)
	b.ReportAllocs()
	for b.Loop() {
		s.compile(id, "client-1")
	}
}

// BenchmarkGrantsCached is the same for an identity whose grants another
// connection compiled already (reconnects, fleets sharing an identity).
func BenchmarkGrantsCached(b *testing.B) {
	s, id := benchPolicy(b)
	s.Grants(id, "client-1")
	b.ReportAllocs()
	for b.Loop() {
		s.Grants(id, "client-2")
	}
}

// BenchmarkGrantsPublish is the per-PUBLISH cost: the topic matches the
// last template of the last topic space (the worst case in file order).
func BenchmarkGrantsPublish(b *testing.B) {
	s, id := benchPolicy(b)
	g := s.Grants(id, "client-1")
	topic := "s9/broadcast/t8/y/x/z"
	if !g.Publish(topic).Allowed {
		b.Fatalf("%s not allowed", topic)
	}
	b.ReportAllocs()
	for b.Loop() {
		g.Publish(topic)
	}
}

// BenchmarkGrantsSubscribe is the per-filter cost of a SUBSCRIBE.
func BenchmarkGrantsSubscribe(b *testing.B) {
	s, id := benchPolicy(b)
	g := s.Grants(id, "client-1")
	filter := "$share/g/s9/sites/berlin/t7/+"
	if !g.Subscribe(filter).Allowed {
		b.Fatalf("%s not allowed", filter)
	}
	b.ReportAllocs()
	for b.Loop() {
		g.Subscribe(filter)
	}
}

// BenchmarkGrantsReceive is the per-delivery cost; the topic matches no
// template (every rule is tried).
func BenchmarkGrantsReceive(b *testing.B) {
	s, id := benchPolicy(b)
	g := s.Grants(id, "client-1")
	b.ReportAllocs()
	for b.Loop() {
		g.Receive("nowhere/at/all")
	}
}

// BenchmarkLoad is the cost of validating the 10,000-assignment policy.
func BenchmarkLoad(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		benchPolicy(b)
	}
}

// The benchmark policy's answers do not allocate (run as a test too).
func TestBenchPolicyDoesNotAllocate(t *testing.T) {
	s, id := benchPolicy(t)
	g := s.Grants(id, "client-1")
	n := testing.AllocsPerRun(50, func() {
		g.Publish("s9/broadcast/t8/y/x/z")
		g.Subscribe("$share/g/s9/sites/berlin/t7/+")
		g.Receive("nowhere/at/all")
	})
	if n != 0 {
		t.Errorf("got %v allocations, want 0", n)
	}
	if got := len(g.publish) + len(g.subscribe); got != 200 {
		t.Errorf("compiled %d rules, want 200", got)
	}
}
