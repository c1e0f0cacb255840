package policy

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none for a valid config
	}{
		{"valid", Config{Namespace: ns1, Files: []string{"p.yaml"}}, nil},
		{"case-insensitive", Config{Namespace: "/SUBSCRIPTIONS/s/RESOURCEGROUPS/rg/PROVIDERS/microsoft.eventgrid/NAMESPACES/n", Files: []string{"p"}}, nil},
		{"trailing slash", Config{Namespace: ns1 + "/", Files: []string{"p"}}, nil},
		{"default limit", DefaultConfig(), []string{"policy.namespace: must be set", "policy.files: at least one"}},
		{"resource group only", Config{Namespace: "/subscriptions/s/resourceGroups/rg", Files: []string{"p"}}, []string{"policy.namespace: \"/subscriptions/s/resourceGroups/rg\" is not of the form"}},
		{"topic space", Config{Namespace: ns1 + "/topicSpaces/t", Files: []string{"p"}}, []string{"policy.namespace"}},
		{"other provider", Config{Namespace: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.EventHub/namespaces/n", Files: []string{"p"}}, []string{"policy.namespace"}},
		{"empty segment", Config{Namespace: "/subscriptions//resourceGroups/rg/providers/Microsoft.EventGrid/namespaces/n", Files: []string{"p"}}, []string{"policy.namespace"}},
		{"empty file", Config{Namespace: ns1, Files: []string{"p", " "}}, []string{"policy.files[1]: empty path"}},
		{"negative limit", Config{Namespace: ns1, Files: []string{"p"}, MaxTemplatesPerTopicSpace: -1}, []string{"policy.maxTemplatesPerTopicSpace: must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
		})
	}
	if got := DefaultConfig().MaxTemplatesPerTopicSpace; got != 10 {
		t.Errorf("default MaxTemplatesPerTopicSpace: got %d, want 10", got)
	}
}

// SPEC 3.3: scopes nest and compare case-insensitively.
func TestParseScope(t *testing.T) {
	ns, _ := parseScope(ns1)
	tests := []struct {
		name     string
		scope    string
		kind     scopeKind
		contains bool // contains the whole namespace ns1
		isErr    bool
	}{
		{"root", "/", scopeRoot, true, false},
		{"subscription", "/subscriptions/" + sub1, scopeSubscription, true, false},
		{"subscription upper case", "/SUBSCRIPTIONS/" + strings.ToUpper(sub1), scopeSubscription, true, false},
		{"other subscription", "/subscriptions/" + sub2, scopeSubscription, false, false},
		{"resource group", "/subscriptions/" + sub1 + "/resourceGroups/RG1", scopeResourceGroup, true, false},
		{"other resource group", "/subscriptions/" + sub1 + "/resourceGroups/rg2", scopeResourceGroup, false, false},
		{"namespace", strings.ToLower(ns1), scopeNamespace, true, false},
		{"namespace trailing slash", ns1 + "/", scopeNamespace, true, false},
		{"other namespace", "/subscriptions/" + sub1 + "/resourceGroups/rg1/providers/Microsoft.EventGrid/namespaces/ns2", scopeNamespace, false, false},
		{"topic space", ns1 + "/topicSpaces/t", scopeTopicSpace, false, false},
		{"other provider", "/subscriptions/" + sub1 + "/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/ns1", scopeOther, false, false},
		{"namespace client", ns1 + "/clients/c", scopeOther, false, false},
		{"management group", "/providers/Microsoft.Management/managementGroups/mg", scopeOther, false, false},
		{"partial path", "/subscriptions/" + sub1 + "/resourceGroups/rg1/providers", 0, false, true},
		{"relative", "subscriptions/" + sub1, 0, false, true},
		{"empty segment", "/subscriptions//resourceGroups/rg1", 0, false, true},
		{"not subscriptions", "/tenants/x", 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := parseScope(tt.scope)
			if (err != nil) != tt.isErr {
				t.Fatalf("parseScope(%q): got error %v, want error %v", tt.scope, err, tt.isErr)
			}
			if err != nil {
				return
			}
			if sc.kind != tt.kind {
				t.Errorf("kind: got %d, want %d", sc.kind, tt.kind)
			}
			if got := sc.containsNamespace(ns); got != tt.contains {
				t.Errorf("containsNamespace: got %v, want %v", got, tt.contains)
			}
		})
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "microsoft.eventgrid/topicspaces/publish/action", true},
		{"microsoft.eventgrid/*", "microsoft.eventgrid/topicspaces/publish/action", true},
		{"microsoft.eventgrid/topicspaces/*/action", "microsoft.eventgrid/topicspaces/publish/action", true},
		{"microsoft.eventgrid/*/subscribe/*", "microsoft.eventgrid/topicspaces/publish/action", false},
		{"microsoft.storage/*", "microsoft.eventgrid/topicspaces/publish/action", false},
		{"microsoft.eventgrid/topicspaces/publish/action", "microsoft.eventgrid/topicspaces/publish/action", true},
		{"microsoft.eventgrid/topicspaces/publish", "microsoft.eventgrid/topicspaces/publish/action", false},
		{"*/action", "microsoft.eventgrid/topicspaces/publish/action", true},
		{"**a*", "aaa", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"", "", true},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.name); got != tt.want {
			t.Errorf("globMatch(%q, %q): got %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestParseRoleID(t *testing.T) {
	tests := []struct {
		in, want string
		isErr    bool
	}{
		{RolePublisherID, RolePublisherID, false},
		{strings.ToUpper(RoleSubscriberID), RoleSubscriberID, false},
		{"/subscriptions/" + sub1 + "/providers/Microsoft.Authorization/roleDefinitions/" + RolePublisherID, RolePublisherID, false},
		{"/providers/microsoft.authorization/ROLEDEFINITIONS/" + RolePublisherID, RolePublisherID, false},
		{"publisher", "", true},
		{"/subscriptions/" + sub1 + "/providers/Microsoft.Foo/roleDefinitions/" + RolePublisherID, "", true},
		{RolePublisherID[:35], "", true},
	}
	for _, tt := range tests {
		got, err := parseRoleID(tt.in)
		if got != tt.want || (err != nil) != tt.isErr {
			t.Errorf("parseRoleID(%q): got %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.isErr)
		}
	}
}
