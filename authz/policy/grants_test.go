package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
)

// spacesYAML is the topic spaces of most grant tests.
const spacesYAML = `topicSpaces:
  - name: telemetry
    topicTemplates: ["devices/${client.authenticationName}/telemetry/#"]
  - name: commands
    topicTemplates: ["devices/${client.authenticationName}/commands/+"]
  - name: broadcast
    topicTemplates: ["broadcast/#", "alerts/+/critical"]
  - name: sites
    topicTemplates: ["sites/${client.attributes.site}/#"]
  - name: own-client
    topicTemplates: ["clients/${client.clientId}/#"]
`

// assignment returns a YAML list item of roleAssignments/denyAssignments.
func assign(principal, role, scope string) string {
	return fmt.Sprintf("  - principalId: %q\n    roleDefinitionName: %s\n    scope: %s", principal, role, scope)
}

// policyWith returns spacesYAML plus extra sections.
func policyWith(sections ...string) string {
	return spacesYAML + strings.Join(sections, "\n") + "\n"
}

type check struct {
	action authz.Action
	topic  string
	want   authz.Decision
}

func allow(space, tpl string) authz.Decision {
	return authz.Decision{Allowed: true, TopicSpace: space, Template: tpl}
}

var (
	noGrant = authz.Decision{Reason: authz.NoGrant}
	invalid = authz.Decision{Reason: authz.InvalidTopic}
)

func denied(space, tpl string) authz.Decision {
	return authz.Decision{Reason: authz.DenyAssignment, TopicSpace: space, Template: tpl}
}

const (
	tplTelemetry = "devices/${client.authenticationName}/telemetry/#"
	tplCommands  = "devices/${client.authenticationName}/commands/+"
	tplBroadcast = "broadcast/#"
	tplAlerts    = "alerts/+/critical"
	tplSites     = "sites/${client.attributes.site}/#"
)

func decide1(g *Grants, action authz.Action, q string) authz.Decision {
	switch action {
	case authz.Publish:
		return g.Publish(q)
	case authz.Subscribe:
		return g.Subscribe(q)
	case authz.Receive:
		return g.Receive(q)
	}
	panic("unknown action")
}

func runChecks(t *testing.T, s *Snapshot, id *authz.Identity, clientID string, checks []check) {
	t.Helper()
	g := s.Grants(id, clientID)
	for _, c := range checks {
		if got := decide1(g, c.action, c.topic); got != c.want {
			t.Errorf("%s %q: got %+v, want %+v", c.action, c.topic, got, c.want)
		}
		// Explain must agree with Grants (the can-i answer is the real one).
		if got := s.Explain(id, clientID, c.action, c.topic).Decision; got != c.want {
			t.Errorf("Explain %s %q: got %+v, want %+v", c.action, c.topic, got, c.want)
		}
	}
}

// SPEC 3.3: an assignment applies to its scope and everything under it, at
// each of the four levels; other subscriptions, resource groups and
// namespaces grant nothing here; scopes compare case-insensitively.
func TestScopeInheritance(t *testing.T) {
	rg := "/subscriptions/" + sub1 + "/resourceGroups/rg1"
	both := []check{
		{authz.Publish, "devices/p/telemetry/t", allow("telemetry", tplTelemetry)},
		{authz.Publish, "broadcast/news", allow("broadcast", tplBroadcast)},
	}
	telemetryOnly := []check{
		{authz.Publish, "devices/p/telemetry/t", allow("telemetry", tplTelemetry)},
		{authz.Publish, "broadcast/news", noGrant},
	}
	none := []check{
		{authz.Publish, "devices/p/telemetry/t", noGrant},
		{authz.Publish, "broadcast/news", noGrant},
	}
	tests := []struct {
		name   string
		scope  string
		checks []check
	}{
		{"root", "/", both},
		{"subscription", "/subscriptions/" + sub1, both},
		{"resource group", rg, both},
		{"namespace", ns1, both},
		{"topic space", ns1 + "/topicSpaces/telemetry", telemetryOnly},
		{"subscription other case", "/SUBSCRIPTIONS/" + strings.ToUpper(sub1), both},
		{"resource group other case", "/subscriptions/" + sub1 + "/resourcegroups/RG1", both},
		{"namespace other case", strings.ToUpper(ns1), both},
		{"topic space other case", strings.ToLower(ns1) + "/TOPICSPACES/Telemetry", telemetryOnly},
		{"trailing slash", ns1 + "/topicSpaces/telemetry/", telemetryOnly},
		{"other subscription", "/subscriptions/" + sub2, none},
		{"other resource group", "/subscriptions/" + sub1 + "/resourceGroups/rg2", none},
		{"other namespace", rg + "/providers/Microsoft.EventGrid/namespaces/ns2", none},
		{"other namespace's topic space", rg + "/providers/Microsoft.EventGrid/namespaces/ns2/topicSpaces/telemetry", none},
		{"undefined topic space", ns1 + "/topicSpaces/nope", none},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustLoad(t, "p.yaml", policyWith("roleAssignments:", assign("p", RolePublisher, tt.scope)))
			runChecks(t, s, &authz.Identity{AuthenticationName: "p"}, "c", tt.checks)
		})
	}
}

// SPEC 3.3: built-in roles by name or id; custom roles with dataActions,
// notDataActions and '*' wildcards, compared case-insensitively.
func TestRoles(t *testing.T) {
	roles := `roleDefinitions:
  - name: All EventGrid
    dataActions: ["Microsoft.EventGrid/*"]
  - name: Everything
    dataActions: ["*"]
  - name: Everything but publish
    dataActions: ["*"]
    notDataActions: ["Microsoft.EventGrid/topicSpaces/publish/action"]
  - name: Upper case subscribe
    id: 0b1c0000-0000-4000-8000-000000000001
    dataActions: ["MICROSOFT.EVENTGRID/topicspaces/SUBSCRIBE/action"]
  - name: Any action verb
    dataActions: ["Microsoft.EventGrid/topicSpaces/*/action"]
    notDataActions: ["*/subscribe/*"]
  - name: Storage only
    dataActions: ["Microsoft.Storage/*"]
  - name: Events only
    dataActions: ["Microsoft.EventGrid/events/send/action"]`
	pub := check{authz.Publish, "broadcast/x", allow("broadcast", tplBroadcast)}
	sub := check{authz.Subscribe, "broadcast/#", allow("broadcast", tplBroadcast)}
	noPub := check{authz.Publish, "broadcast/x", noGrant}
	noSub := check{authz.Subscribe, "broadcast/#", noGrant}
	tests := []struct {
		name  string
		role  string // roleDefinitionName: or roleDefinitionId: line
		check []check
	}{
		{"publisher by name", "roleDefinitionName: EventGrid TopicSpaces Publisher", []check{pub, noSub}},
		{"publisher by name other case", "roleDefinitionName: eventgrid topicspaces PUBLISHER", []check{pub, noSub}},
		{"publisher by GUID", "roleDefinitionId: " + RolePublisherID, []check{pub, noSub}},
		{"subscriber by full id", "roleDefinitionId: /subscriptions/" + sub1 + "/providers/Microsoft.Authorization/roleDefinitions/" + strings.ToUpper(RoleSubscriberID), []check{noPub, sub}},
		{"name and id agree", "roleDefinitionName: EventGrid TopicSpaces Subscriber\n    roleDefinitionId: " + RoleSubscriberID, []check{noPub, sub}},
		{"provider wildcard", "roleDefinitionName: All EventGrid", []check{pub, sub}},
		{"star", "roleDefinitionName: Everything", []check{pub, sub}},
		{"notDataActions", "roleDefinitionName: Everything but publish", []check{noPub, sub}},
		{"custom by id", "roleDefinitionId: 0B1C0000-0000-4000-8000-000000000001", []check{noPub, sub}},
		{"middle wildcard minus subscribe", "roleDefinitionName: Any action verb", []check{pub, noSub}},
		{"other provider", "roleDefinitionName: Storage only", []check{noPub, noSub}},
		{"other Event Grid action", "roleDefinitionName: Events only", []check{noPub, noSub}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policyWith(roles, "roleAssignments:", "  - principalId: p\n    "+tt.role+"\n    scope: "+ns1)
			s := mustLoad(t, "p.yaml", p)
			runChecks(t, s, &authz.Identity{AuthenticationName: "p"}, "c", tt.check)
		})
	}
}

// SPEC 3.3: principals are the authentication name, its groups and its app
// roles; a groups overage (SPEC 2.1) drops the groups.
func TestPrincipals(t *testing.T) {
	const (
		oid   = "6f1d0000-0000-4000-8000-00000000000a"
		group = "99999999-0000-4000-8000-0000000000f0"
	)
	p := policyWith("roleAssignments:",
		assign(strings.ToUpper(oid), RolePublisher, ns1+"/topicSpaces/telemetry"),
		assign(group, RoleSubscriber, ns1+"/topicSpaces/broadcast"),
		assign("approle:Commands.Read", RoleSubscriber, ns1+"/topicSpaces/commands"),
	)
	s := mustLoad(t, "p.yaml", p)
	tests := []struct {
		name   string
		id     *authz.Identity
		checks []check
	}{
		{"object id, case-insensitive", &authz.Identity{AuthenticationName: oid}, []check{
			{authz.Publish, "devices/" + oid + "/telemetry/x", allow("telemetry", tplTelemetry)},
			{authz.Subscribe, "broadcast/#", noGrant},
		}},
		{"group", &authz.Identity{AuthenticationName: "someone", Groups: []string{"other", strings.ToUpper(group)}}, []check{
			{authz.Subscribe, "broadcast/#", allow("broadcast", tplBroadcast)},
			{authz.Receive, "broadcast/news", allow("broadcast", tplBroadcast)},
			{authz.Publish, "broadcast/news", noGrant},
		}},
		{"groups overage ignores groups", &authz.Identity{AuthenticationName: "someone", Groups: []string{group}, GroupsOverage: true}, []check{
			{authz.Subscribe, "broadcast/#", noGrant},
			{authz.Receive, "broadcast/news", noGrant},
		}},
		{"app role", &authz.Identity{AuthenticationName: "app", AppRoles: []string{"Commands.Read"}}, []check{
			{authz.Subscribe, "devices/app/commands/+", allow("commands", tplCommands)},
			{authz.Subscribe, "devices/app/commands/#", noGrant}, // '#' ⊄ '+' (SPEC 3.2)
			{authz.Subscribe, "devices/other/commands/x", noGrant},
		}},
		{"app role is case-sensitive", &authz.Identity{AuthenticationName: "app", AppRoles: []string{"commands.read"}}, []check{
			{authz.Subscribe, "devices/app/commands/+", noGrant},
		}},
		{"app role not by name", &authz.Identity{AuthenticationName: "Commands.Read"}, []check{
			{authz.Subscribe, "devices/Commands.Read/commands/+", noGrant},
		}},
		// A generic issuer's subject, or a groups claim, spelled like an
		// app role principal must not take the app role's grants.
		{"app role not by a name or group spelled approle:", &authz.Identity{AuthenticationName: "approle:Commands.Read",
			Groups: []string{"approle:Commands.Read"}}, []check{
			{authz.Subscribe, "devices/approle:Commands.Read/commands/+", noGrant},
		}},
		{"nil identity", nil, []check{
			{authz.Subscribe, "broadcast/#", noGrant},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runChecks(t, s, tt.id, "c", tt.checks)
		})
	}
}

// SPEC 3.3: deny assignments win over every role assignment, including
// through groups; an unresolvable deny template denies its widest form.
func TestDenyAssignments(t *testing.T) {
	const group = "99999999-0000-4000-8000-0000000000f1"
	p := `topicSpaces:
  - name: site-data
    topicTemplates: ["sites/${client.attributes.site}/#"]
  - name: all-sites
    topicTemplates: ["sites/#"]
  - name: broadcast
    topicTemplates: ["broadcast/#"]
roleDefinitions:
  - name: Everything
    dataActions: ["*"]
roleAssignments:
` + assign("p", "Everything", ns1) + "\n" + assign("q", "Everything", ns1) + `
denyAssignments:
` + assign("p", RolePublisher, ns1+"/topicSpaces/broadcast") + "\n    principalType: User\n" +
		assign(group, RoleSubscriber, ns1+"/topicSpaces/site-data") + "\n    principalType: Group\n"
	s := mustLoad(t, "p.yaml", p)
	site := map[string][]string{"site": {"berlin"}}
	tests := []struct {
		name   string
		id     *authz.Identity
		checks []check
	}{
		{"deny publish only", &authz.Identity{AuthenticationName: "p"}, []check{
			{authz.Publish, "broadcast/x", denied("broadcast", "broadcast/#")},
			{authz.Subscribe, "broadcast/#", allow("broadcast", "broadcast/#")},
			{authz.Publish, "sites/x/y", allow("all-sites", "sites/#")},
		}},
		{"no deny for others", &authz.Identity{AuthenticationName: "q", Groups: []string{"x"}}, []check{
			{authz.Publish, "broadcast/x", allow("broadcast", "broadcast/#")},
		}},
		{"deny through group", &authz.Identity{AuthenticationName: "q", Groups: []string{group}, Attributes: site}, []check{
			{authz.Subscribe, "sites/berlin/#", denied("site-data", tplSites)},
			{authz.Subscribe, "sites/+/temp", denied("site-data", tplSites)}, // overlaps the deny
			{authz.Subscribe, "sites/paris/#", allow("all-sites", "sites/#")},
			{authz.Receive, "sites/berlin/x", denied("site-data", tplSites)},
			{authz.Receive, "sites/paris/x", allow("all-sites", "sites/#")},
			{authz.Publish, "sites/berlin/x", allow("site-data", tplSites)}, // the deny is on subscribe
		}},
		// A groups overage hides whether q is in the group: its deny
		// applies (fail closed), a user's deny does not.
		{"overage applies group denies", &authz.Identity{AuthenticationName: "q", GroupsOverage: true, Attributes: site}, []check{
			{authz.Subscribe, "sites/berlin/#", denied("site-data", tplSites)},
			{authz.Subscribe, "sites/paris/#", allow("all-sites", "sites/#")},
			{authz.Publish, "broadcast/x", allow("broadcast", "broadcast/#")},
		}},
		{"no overage, no groups: no group deny", &authz.Identity{AuthenticationName: "q", Attributes: site}, []check{
			{authz.Subscribe, "sites/berlin/#", allow("site-data", tplSites)}, // compiled apart from the overage's
		}},
		{"unresolvable deny denies widest", &authz.Identity{AuthenticationName: "q", Groups: []string{group}}, []check{
			{authz.Subscribe, "sites/paris/#", denied("site-data", tplSites)},
			{authz.Receive, "sites/any/x", denied("site-data", tplSites)},
			{authz.Subscribe, "broadcast/#", allow("broadcast", "broadcast/#")},
		}},
		{"hostile value in deny denies widest", &authz.Identity{AuthenticationName: "q", Groups: []string{group}, Attributes: map[string][]string{"site": {"#"}}}, []check{
			{authz.Subscribe, "sites/paris/#", denied("site-data", tplSites)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runChecks(t, s, tt.id, "c", tt.checks)
		})
	}
}

// SPEC 3.1, 3.2: $ reservation, shared subscriptions, filter ⊆ one single
// template, variables.
func TestTopicsAndFilters(t *testing.T) {
	roles := `roleDefinitions:
  - name: Both
    dataActions: [Microsoft.EventGrid/topicSpaces/publish/action, Microsoft.EventGrid/topicSpaces/subscribe/action]`
	s := mustLoad(t, "p.yaml", policyWith(roles, "roleAssignments:", assign("p", "Both", ns1)))
	id := &authz.Identity{AuthenticationName: "p", Attributes: map[string][]string{"site": {"berlin", "paris"}}}
	runChecks(t, s, id, "dev-1", []check{
		{authz.Publish, "$SYS/x", invalid},
		{authz.Publish, "devices/p/telemetry/+", invalid},
		{authz.Publish, "", invalid},
		{authz.Publish, "devices/p/telemetry/\x00", invalid},
		{authz.Receive, "$SYS/broker/load", invalid},
		{authz.Subscribe, "$SYS/#", invalid},
		{authz.Subscribe, "#", noGrant},
		{authz.Subscribe, "devices/p/#", noGrant}, // telemetry and commands never combine
		{authz.Subscribe, "a/#/b", invalid},
		{authz.Subscribe, "$share/g1/devices/p/commands/+", allow("commands", tplCommands)},
		{authz.Subscribe, "$share/g1/broadcast/#", allow("broadcast", tplBroadcast)},
		{authz.Subscribe, "$share/g1", invalid},
		{authz.Subscribe, "$share//broadcast/#", invalid},
		{authz.Subscribe, "$share/g/$SYS/#", invalid},
		{authz.Subscribe, "alerts/+/critical", allow("broadcast", tplAlerts)},
		{authz.Subscribe, "alerts/#", noGrant}, // broadcast's two templates do not combine
		{authz.Subscribe, "devices/p/telemetry/#", allow("telemetry", tplTelemetry)},
		{authz.Subscribe, "devices/p/telemetry", allow("telemetry", tplTelemetry)}, // '#' covers its parent
		{authz.Subscribe, "devices/+/telemetry/#", noGrant},
		{authz.Publish, "devices/p/telemetry", allow("telemetry", tplTelemetry)},
		{authz.Publish, "devices/q/telemetry/x", noGrant},
		{authz.Publish, "sites/berlin/x", allow("sites", tplSites)},
		{authz.Publish, "sites/paris/x", allow("sites", tplSites)},
		{authz.Publish, "sites/rome/x", noGrant},
		{authz.Subscribe, "sites/+/x", noGrant},
		{authz.Publish, "clients/dev-1/x", allow("own-client", "clients/${client.clientId}/#")},
		{authz.Publish, "clients/dev-2/x", noGrant},
	})
}

// SPEC 3.1: a variable whose value is missing, empty, or contains / + # or
// NUL makes the template match nothing; it never widens a match. The
// assignment goes to a group so that the hostile values can be any string.
func TestVariableInjection(t *testing.T) {
	const group = "99999999-0000-4000-8000-0000000000f2"
	roles := `roleDefinitions:
  - name: Both
    dataActions: ["Microsoft.EventGrid/topicSpaces/*"]`
	s := mustLoad(t, "p.yaml", policyWith(roles, "roleAssignments:", assign(group, "Both", ns1)))
	hostile := []string{"#", "+", "a/+/b", "a/b", "", "a\x00b", "\xff", strings.Repeat("x", 70000)}
	probes := []struct {
		action authz.Action
		topic  string
	}{
		{authz.Subscribe, "#"},
		{authz.Subscribe, "+/#"},
		{authz.Subscribe, "devices/#"},
		{authz.Subscribe, "devices/+/telemetry/#"},
		{authz.Subscribe, "devices/a/+/b/telemetry/#"},
		{authz.Subscribe, "sites/#"},
		{authz.Subscribe, "sites/+/x"},
		{authz.Subscribe, "clients/#"},
		{authz.Publish, "devices/x/telemetry/y"},
		{authz.Publish, "devices/a/b/telemetry/y"},
		{authz.Publish, "devices/a/x/b/telemetry/y"},
		{authz.Publish, "devices//telemetry/y"},
		{authz.Publish, "sites/a/b/x"},
		{authz.Publish, "sites//x"},
		{authz.Publish, "clients/a/b"},
		{authz.Receive, "devices/x/telemetry/y"},
		{authz.Receive, "sites/x/y"},
	}
	for _, v := range hostile {
		t.Run(fmt.Sprintf("%.12q", v), func(t *testing.T) {
			id := &authz.Identity{AuthenticationName: v, Groups: []string{group},
				Attributes: map[string][]string{"site": {v}}}
			g := s.Grants(id, v)
			for _, r := range append(g.publish, g.subscribe...) {
				if r.space != "broadcast" {
					t.Errorf("template %q of %q resolved to %q with value %.12q", r.template, r.space, r.filter, v)
				}
			}
			for _, p := range probes {
				if d := decide1(g, p.action, p.topic); d.Allowed {
					t.Errorf("%s %q with value %.12q: got %+v, want a denial", p.action, p.topic, v, d)
				}
			}
			if d := g.Publish("broadcast/x"); !d.Allowed {
				t.Errorf("templates without variables: got %+v, want allowed", d)
			}
		})
	}
}

// STYLE 12: decisions never depend on map order or assignment order; the
// first topic space and template in file order decide.
func TestDeterminism(t *testing.T) {
	p := `topicSpaces:
  - name: first
    topicTemplates: ["x/#"]
  - name: second
    topicTemplates: ["x/y", "x/+"]
roleAssignments:
` + assign("p", RolePublisher, ns1+"/topicSpaces/second") + "\n" + assign("p", RolePublisher, ns1+"/topicSpaces/first") + "\n"
	s := mustLoad(t, "p.yaml", p)
	for range 50 {
		g := s.Grants(&authz.Identity{AuthenticationName: "p", Groups: []string{"a", "b", "c"}}, "c")
		if got, want := g.Publish("x/y"), allow("first", "x/#"); got != want {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	}
}

func TestNilGrants(t *testing.T) {
	var g *Grants
	for _, a := range []authz.Action{authz.Publish, authz.Subscribe, authz.Receive} {
		if got := decide1(g, a, "a/b"); got != noGrant {
			t.Errorf("nil Grants %s: got %+v, want %+v", a, got, noGrant)
		}
	}
}

// The per-packet answers do not allocate, allowed or denied.
func TestGrantsDoNotAllocate(t *testing.T) {
	s := mustLoad(t, "p.yaml", policyWith("roleAssignments:",
		assign("p", RolePublisher, ns1), assign("p", RoleSubscriber, ns1)))
	g := s.Grants(&authz.Identity{AuthenticationName: "p", Attributes: map[string][]string{"site": {"b"}}}, "c")
	n := testing.AllocsPerRun(200, func() {
		g.Publish("devices/p/telemetry/x")
		g.Publish("devices/q/telemetry/x")
		g.Publish("$SYS/x")
		g.Subscribe("$share/g/sites/b/#")
		g.Subscribe("devices/+/telemetry/#")
		g.Subscribe("a/#/b")
		g.Receive("broadcast/x")
		g.Receive("nothing/here")
	})
	if n != 0 {
		t.Errorf("got %v allocations per run, want 0", n)
	}
}

// The grants cache key of an identity with a groups overage differs from
// every identity's without one: an overage token must not get the grants
// compiled for another (it gets group denies the other does not). The two
// cases are the keys' known pitfalls: no groups at all, and 255 groups
// whose count's varint begins with the byte an overage was once tagged with
// (the reviewer's construction: one app role and three attributes of 85
// empty values encode like these groups).
func TestGrantsKeyOverage(t *testing.T) {
	s := mustLoad(t, "p.yaml", "topicSpaces:\n  - name: b\n    topicTemplates: [\"broadcast/#\"]\n")
	s.attrKeys = []string{"a", "b", "c"}
	empty85 := make([]string, 85)
	overage := &authz.Identity{AuthenticationName: "p", GroupsOverage: true, AppRoles: []string{""},
		Attributes: map[string][]string{"a": empty85, "b": empty85, "c": empty85}}
	var crafted []string
	crafted = append(crafted, "")
	for _, n := range []int{85, 85, 81} {
		crafted = append(crafted, "U")
		crafted = append(crafted, make([]string, n)...)
	}
	if len(crafted) != 255 {
		t.Fatalf("%d crafted groups, want 255", len(crafted))
	}
	for _, o := range []*authz.Identity{
		{AuthenticationName: "p", AppRoles: overage.AppRoles, Attributes: overage.Attributes}, // the same, no overage
		{AuthenticationName: "p", Groups: crafted},
	} {
		if s.grantsKey(overage, "c") == s.grantsKey(o, "c") {
			t.Errorf("the overage identity shares its grants key with one of %d groups, no overage", len(o.Groups))
		}
	}
}

// A principal id the loader takes for what it is not is refused: one
// holding a control character (it could name the groups overage's
// pseudo-principal) and an app role not spelled approle: in lower case
// (a generic issuer's subject could match it).
func TestPrincipalIDsRefused(t *testing.T) {
	for _, id := range []string{"\x00groups overage", "AppRole:Commands.Read"} {
		_, err := loadString(t, "p.yaml", policyWith("roleAssignments:", assign(id, RolePublisher, ns1)))
		if err == nil || !strings.Contains(err.Error(), "principalId") {
			t.Errorf("principalId %q: err %v, want it refused", id, err)
		}
	}
}
