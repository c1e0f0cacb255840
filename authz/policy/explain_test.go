package policy

import (
	"strings"
	"testing"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
)

// The can-i explanations, as printed (golden): which assignment, role,
// topic space and template decided, or why nothing did.
func TestExplainGolden(t *testing.T) {
	p := policyWith(`roleAssignments:
`+assign("p", RolePublisher, ns1+"/topicSpaces/telemetry")+"\n"+
		assign("p", RoleSubscriber, ns1+"/topicSpaces/sites")+"\n"+
		assign("p", RoleSubscriber, "/subscriptions/"+sub1+"/resourceGroups/rg2")+"\n"+
		assign("99999999-0000-4000-8000-0000000000f0", RoleSubscriber, ns1+"/topicSpaces/broadcast"),
		`denyAssignments:
`+assign("p", RolePublisher, ns1+"/topicSpaces/telemetry"))
	// The deny only exists to be explained below; a second policy without it
	// explains the allow.
	withDeny := mustLoad(t, "policy.yaml", p)
	withoutDeny := mustLoad(t, "policy.yaml", strings.Split(p, "denyAssignments:")[0])
	id := &authz.Identity{AuthenticationName: "p", Groups: []string{"99999999-0000-4000-8000-0000000000f0"}, GroupsOverage: true}
	questions := []struct {
		snap   *Snapshot
		action authz.Action
		q      string
	}{
		{withoutDeny, authz.Publish, "devices/p/telemetry/temp"},
		{withDeny, authz.Publish, "devices/p/telemetry/temp"},
		{withoutDeny, authz.Subscribe, "devices/p/telemetry/#"},
		{withoutDeny, authz.Subscribe, "sites/berlin/#"},
		{withoutDeny, authz.Subscribe, "broadcast/#"},
		{withoutDeny, authz.Receive, "$SYS/load"},
		{withoutDeny, authz.Subscribe, "$share/g/sites/+/x"},
	}
	var b strings.Builder
	for _, q := range questions {
		e := q.snap.Explain(id, "c", q.action, q.q)
		b.WriteString(e.String())
		b.WriteString("\n")
	}
	golden(t, "explain.golden", b.String())
}

func TestExplainDetails(t *testing.T) {
	s := mustLoad(t, "policy.yaml", policyWith("roleAssignments:", assign("p", RoleSubscriber, ns1)))
	e := s.Explain(&authz.Identity{AuthenticationName: "p", Attributes: map[string][]string{"site": {"a/b"}}}, "c", authz.Subscribe, "sites/+/x")
	want := `topic space "sites" template "sites/${client.attributes.site}/#" resolved to nothing: ${client.attributes.site}: value contains '/', '+', '#', U+0000 or invalid UTF-8`
	found := false
	for _, r := range e.Reasons {
		found = found || r == want
	}
	if !found {
		t.Errorf("reasons %q do not contain %q", e.Reasons, want)
	}
	e = s.Explain(&authz.Identity{AuthenticationName: "p"}, "c", authz.Subscribe, "broadcast/x")
	if e.Assignment == nil || e.Assignment.Entry != `roleAssignments[0] (principal "p")` || e.Filter != "broadcast/#" {
		t.Fatalf("allowed: got assignment %+v filter %q", e.Assignment, e.Filter)
	}
	wantA := `role assignment roleAssignments[0] (principal "p") in policy.yaml: principal p, role "EventGrid TopicSpaces Subscriber", scope ` + ns1
	if got := e.Assignment.String(); got != wantA {
		t.Errorf("Assignment.String(): got %q, want %q", got, wantA)
	}
	e = s.Explain(nil, "c", authz.Publish, "broadcast/x")
	if len(e.Reasons) == 0 || !strings.Contains(e.Reasons[0], "no principal") {
		t.Errorf("nil identity: got reasons %q", e.Reasons)
	}
}
