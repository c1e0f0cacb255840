package policy

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
)

// SPEC 3.3, 7: az CLI exports load unchanged, merged with a native file
// defining the custom role they refer to; unknown roles, conditions,
// management groups and other namespaces grant nothing.
func TestLoadAzExports(t *testing.T) {
	cfg := testConfig(
		filepath.Join("testdata", "az", "roles.yaml"),
		filepath.Join("testdata", "az", "topic-spaces.json"),
		filepath.Join("testdata", "az", "role-assignments.json"),
		filepath.Join("testdata", "az", "role-assignments.yaml"),
	)
	s, err := Load(cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := s.TopicSpaces(), []string{"telemetry", "commands"}; !slices.Equal(got, want) {
		t.Errorf("topic spaces: got %q, want %q (legacy belongs to ns2)", got, want)
	}
	wantWarnings := []string{
		"testdata/az/topic-spaces.json: 1 topic spaces of other namespaces ignored",
		"testdata/az/role-assignments.json: 4 role assignments ignored: 2 name roles defined in no policy file, 1 have ABAC conditions (not evaluated), 0 have unrecognised scopes, 1 are at management-group scope (not resolvable to subscriptions; repeat them at the subscription)",
	}
	if got := s.Warnings(); !slices.Equal(got, wantWarnings) {
		t.Errorf("warnings:\ngot  %q\nwant %q", got, wantWarnings)
	}
	const (
		a         = "6f1d0000-0000-4000-8000-00000000000a"
		b         = "6f1d0000-0000-4000-8000-00000000000b"
		c         = "6f1d0000-0000-4000-8000-00000000000c"
		d         = "6f1d0000-0000-4000-8000-00000000000d"
		e         = "6f1d0000-0000-4000-8000-00000000000e"
		operators = "99999999-0000-4000-8000-0000000000f0"
		owner     = "7a7a0000-0000-4000-8000-000000000001"
	)
	telemetry := "devices/${client.authenticationName}/telemetry/#"
	tests := []struct {
		name   string
		id     *authz.Identity
		checks []check
	}{
		{"publisher at topic space", &authz.Identity{AuthenticationName: a}, []check{
			{authz.Publish, "devices/" + a + "/telemetry/t", allow("telemetry", telemetry)},
			{authz.Publish, "devices/" + a + "/commands/x", noGrant},
			{authz.Subscribe, "devices/" + a + "/commands/#", noGrant}, // its subscribe is in ns2
		}},
		{"group subscriber at namespace", &authz.Identity{AuthenticationName: "x", Groups: []string{operators}}, []check{
			{authz.Subscribe, "broadcast/commands/#", allow("commands", "broadcast/commands/#")},
			{authz.Subscribe, "devices/x/telemetry/#", allow("telemetry", telemetry)},
			{authz.Publish, "broadcast/commands/x", noGrant},
		}},
		{"publisher from the YAML export", &authz.Identity{AuthenticationName: b}, []check{
			{authz.Publish, "broadcast/commands/x", allow("commands", "broadcast/commands/#")},
		}},
		{"conditional assignment ignored", &authz.Identity{AuthenticationName: c}, []check{
			{authz.Publish, "broadcast/commands/x", noGrant},
		}},
		{"custom role from native file", &authz.Identity{AuthenticationName: d}, []check{
			{authz.Subscribe, "devices/" + d + "/telemetry/#", allow("telemetry", telemetry)},
			{authz.Publish, "devices/" + d + "/telemetry/x", noGrant},
		}},
		{"management group grants nothing", &authz.Identity{AuthenticationName: e}, []check{
			{authz.Subscribe, "broadcast/commands/#", noGrant},
		}},
		{"owner has no data actions", &authz.Identity{AuthenticationName: owner}, []check{
			{authz.Publish, "broadcast/commands/x", noGrant},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runChecks(t, s, tt.id, "c", tt.checks)
		})
	}
}

// SPEC 7: several files merge, in order; a topic space defined twice across
// files is an error naming both places.
func TestLoadMerge(t *testing.T) {
	spaces := "topicSpaces:\n  - name: t\n    topicTemplates: [\"t/#\"]\n"
	assignments := "roleAssignments:\n" + assign("p", RolePublisher, ns1+"/topicSpaces/t") + "\n"
	s := mustLoad(t, "spaces.yaml", spaces, "assignments.yaml", assignments)
	if got := s.Grants(&authz.Identity{AuthenticationName: "p"}, "c").Publish("t/x"); !got.Allowed {
		t.Errorf("merged policy: got %+v, want allowed", got)
	}
	_, err := loadString(t, "a.yaml", spaces, "b.json", `{"topicSpaces": [{"name": "T", "topicTemplates": ["u/#"]}]}`)
	want := `b.json: topicSpaces[0] (name "T"): name: duplicate topic space "T", first defined at a.yaml: topicSpaces[0] (name "t")`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	var pe *Error
	if !errors.As(err, &pe) || pe.File != "b.json" || pe.Field != "name" {
		t.Errorf("errors.As *Error: got %+v", pe)
	}
}

// Load reads files; a missing file is an error naming it, and problems of
// every file are reported together.
func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", "topicSpaces: []\n")
	bad := writeFile(t, dir, "bad.yaml", "topicSpaces: [{name: x}]\n")
	missing := filepath.Join(dir, "missing.yaml")
	_, err := Load(testConfig(good, missing, bad))
	if err == nil {
		t.Fatal("got no error, want one")
	}
	for _, want := range []string{
		missing + ": read: no such file or directory",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to contain %q", err, want)
		}
	}
	if _, err := Load(Config{Files: []string{good}}); err == nil || !strings.Contains(err.Error(), "policy.namespace") {
		t.Errorf("invalid config: got %v, want a policy.namespace error", err)
	}
	s, err := Load(testConfig(good))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := s.Warnings(); len(got) != 1 || !strings.Contains(got[0], "grants nothing") {
		t.Errorf("empty policy: got warnings %q, want one saying it grants nothing", got)
	}
	big := filepath.Join(dir, "big.yaml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(maxFileSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := Load(testConfig(big)); err == nil || !strings.Contains(err.Error(), "larger than 64 MiB") {
		t.Errorf("big file: got %v, want a size error", err)
	}
}

// Golden validation errors (STYLE 41): each testdata/errors/<name>.txt holds
// a policy file named <name>, a "----" line, and the expected error (or
// "ok" and the warnings). Errors name the file, the entry and the field.
func TestValidationErrorsGolden(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "errors", "*.txt"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".txt")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			input, _, ok := strings.Cut(string(raw), "\n----\n")
			if !ok {
				t.Fatalf("%s: no ---- separator", path)
			}
			s, err := loadString(t, name, input+"\n")
			var got string
			if err != nil {
				got = err.Error() + "\n"
			} else {
				got = "ok: " + s.Summary() + "\n"
				for _, w := range s.Warnings() {
					got += "warning: " + w + "\n"
				}
			}
			golden(t, filepath.Join("errors", name+".txt"), input+"\n----\n"+got)
		})
	}
}

// SPEC 3.1: the template limit is configurable.
func TestTemplateLimit(t *testing.T) {
	p := "topicSpaces:\n  - name: t\n    topicTemplates: [a/1, a/2, a/3]\n"
	cfg := testConfig("p.yaml")
	cfg.MaxTemplatesPerTopicSpace = 2
	_, err := build(cfg, []fileData{{name: "p.yaml", data: []byte(p)}})
	want := `p.yaml: topicSpaces[0] (name "t"): topicTemplates: 3 templates, more than the limit of 2 (policy.maxTemplatesPerTopicSpace)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	cfg.MaxTemplatesPerTopicSpace = 3
	if _, err := build(cfg, []fileData{{name: "p.yaml", data: []byte(p)}}); err != nil {
		t.Errorf("at the limit: got %v", err)
	}
}

// An `az role definition list` element whose permission carries an ABAC
// condition grants nothing through that permission (the proxy cannot
// evaluate it, as for a conditional assignment), and says so.
func TestAzRoleDefinitionWithCondition(t *testing.T) {
	roles := `[{"roleName": "Conditional Publisher", "name": "7d6b2f0e-1111-4222-8333-944444444444", "roleType": "CustomRole",
  "permissions": [{"actions": [], "notActions": [], "dataActions": ["Microsoft.EventGrid/topicSpaces/publish/action"], "notDataActions": [],
    "condition": "@Resource[Microsoft.EventGrid/topicSpaces:name] StringEquals 'telemetry'", "conditionVersion": "2.0"}]},
 {"roleName": "Plain Publisher", "name": "7d6b2f0e-1111-4222-8333-955555555555", "roleType": "CustomRole",
  "permissions": [{"dataActions": ["Microsoft.EventGrid/topicSpaces/publish/action"], "notDataActions": [], "condition": null}]}]`
	s := mustLoad(t, "roles.json", roles, "p.yaml", policyWith("roleAssignments:",
		assign("c", "Conditional Publisher", ns1), assign("p", "Plain Publisher", ns1)))
	runChecks(t, s, &authz.Identity{AuthenticationName: "c"}, "x", []check{{authz.Publish, "broadcast/x", noGrant}})
	runChecks(t, s, &authz.Identity{AuthenticationName: "p"}, "x", []check{{authz.Publish, "broadcast/x", allow("broadcast", tplBroadcast)}})
	if w := strings.Join(s.Warnings(), "\n"); !strings.Contains(w, "1 permissions with ABAC conditions (not evaluated) grant nothing") {
		t.Errorf("warnings %q, want one for the conditional permission", w)
	}
}

// can-i names the az export entries that would have granted the principal
// but were left out at load (an ABAC condition, a role no file defines),
// instead of saying no assignment names it.
func TestExplainNamesDroppedAzAssignments(t *testing.T) {
	const p = "6f1d2b9e-0000-4000-8000-000000000003"
	ns := "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg1/providers/Microsoft.EventGrid/namespaces/ns1"
	assignments := `[{"principalId": "` + p + `", "principalType": "ServicePrincipal", "roleDefinitionName": "EventGrid TopicSpaces Publisher",
   "roleDefinitionId": "/subscriptions/00000000-0000-0000-0000-000000000001/providers/Microsoft.Authorization/roleDefinitions/a12b0b94-b317-4dcd-84a8-502ce99884c6",
   "scope": "` + ns + `", "condition": "@Resource[Microsoft.EventGrid/topicSpaces:name] StringEquals 'x'", "conditionVersion": "2.0"},
  {"principalId": "` + p + `", "principalType": "ServicePrincipal", "roleDefinitionName": "MQTT Device", "scope": "` + ns + `", "condition": null}]`
	s := mustLoad(t, "ra.json", assignments, "p.yaml", spacesYAML)
	e := s.Explain(&authz.Identity{AuthenticationName: p}, "c", authz.Publish, "broadcast/x")
	why := strings.Join(e.Reasons, "\n")
	for _, want := range []string{"ABAC condition", `"MQTT Device"`} {
		if !strings.Contains(why, want) {
			t.Errorf("reasons do not mention %s:\n%s", want, why)
		}
	}
	if strings.Contains(why, "no role assignment names") {
		t.Errorf("reasons say no assignment names the principal:\n%s", why)
	}
}
