package token_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
)

// SPEC 2.1: groups, overage, app roles and client attributes.
func TestIdentityClaims(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	tests := []struct {
		name        string
		extra       map[string]any
		wantGroups  []string
		wantOverage bool
		wantRoles   []string
		wantAttrs   map[string][]string // checked keys
		wantNoAttrs []string            // keys that must be absent
		generic     bool
	}{
		{
			name:       "groups and roles",
			extra:      map[string]any{"groups": []string{"g1", "g2"}, "roles": []string{"Telemetry.Send", "Admin"}},
			wantGroups: []string{"g1", "g2"}, wantRoles: []string{"Telemetry.Send", "Admin"},
			wantNoAttrs: []string{"groups", "roles"},
		},
		{
			name:        "groups overage",
			extra:       map[string]any{"_claim_names": map[string]any{"groups": "src1"}, "_claim_sources": map[string]any{"src1": map[string]any{"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}},
			wantOverage: true, wantNoAttrs: []string{"_claim_names", "_claim_sources"},
		},
		{
			name:  "_claim_names without groups is no overage",
			extra: map[string]any{"_claim_names": map[string]any{"other": "src1"}},
		},
		{
			name:       "non-string group and role elements are skipped",
			extra:      map[string]any{"groups": []any{"g1", 2, true, nil}, "roles": []any{map[string]any{"a": 1}, "r"}},
			wantGroups: []string{"g1"}, wantRoles: []string{"r"},
		},
		{
			name: "attributes: strings, int32 bounds, string arrays",
			extra: map[string]any{
				"site": "plant-7", "max": 2147483647, "min": -2147483648, "zero": 0,
				"tags": []string{"a", "b"}, "none": []string{},
			},
			wantAttrs: map[string][]string{
				"site": {"plant-7"}, "max": {"2147483647"}, "min": {"-2147483648"}, "zero": {"0"},
				"tags": {"a", "b"}, "none": {}, "ver": {"2.0"}, "azp": nil, /* present, value random */
			},
		},
		{
			name: "not attributes: beyond int32, floats, bools, objects, mixed arrays, null",
			extra: map[string]any{
				"big": 2147483648, "small": -2147483649, "float": 1.5, "exp1e3": 1e3,
				"flag": true, "obj": map[string]any{"a": "b"}, "mixed": []any{"a", 1}, "nums": []int{1, 2},
				"nested": []any{[]string{"a"}}, "nul": nil,
			},
			wantNoAttrs: []string{"big", "small", "float", "flag", "obj", "mixed", "nums", "nested", "nul"},
		},
		{
			name:  "privilege-looking claims are plain attributes",
			extra: map[string]any{"is_superuser": "true", "acl": []string{"#"}, "admin": true},
			wantAttrs: map[string][]string{
				"is_superuser": {"true"}, "acl": {"#"},
			},
			wantNoAttrs: []string{"admin"},
		},
		{
			name:        "registered and used claims are excluded",
			extra:       map[string]any{"jti": "j1"},
			wantNoAttrs: []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "oid", "tid"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := f.idp.MintEntra(tenant, principalA, 2, tt.extra, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			id, err := f.v.Verify(context.Background(), token.MethodOAuth2JWT, []byte(tok))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !slices.Equal(id.Groups, tt.wantGroups) && (len(id.Groups) != 0 || len(tt.wantGroups) != 0) {
				t.Errorf("got groups %q, want %q", id.Groups, tt.wantGroups)
			}
			if id.GroupsOverage != tt.wantOverage {
				t.Errorf("got GroupsOverage %v, want %v", id.GroupsOverage, tt.wantOverage)
			}
			if !slices.Equal(id.AppRoles, tt.wantRoles) && (len(id.AppRoles) != 0 || len(tt.wantRoles) != 0) {
				t.Errorf("got roles %q, want %q", id.AppRoles, tt.wantRoles)
			}
			for k, want := range tt.wantAttrs {
				got, ok := id.Attributes[k]
				if !ok {
					t.Errorf("attribute %q missing, want %q", k, want)
					continue
				}
				if want != nil && !slices.Equal(got, want) {
					t.Errorf("attribute %q: got %q, want %q", k, got, want)
				}
			}
			for _, k := range tt.wantNoAttrs {
				if v, ok := id.Attributes[k]; ok {
					t.Errorf("attribute %q: got %q, want absent", k, v)
				}
			}
		})
	}
}

// SPEC 2.1: an overage is accepted, warned about once with the principal
// (never the token), and counted.
func TestGroupsOverageLoggedAndCounted(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	tok, err := f.idp.MintEntra(tenant, principalA, 2, map[string]any{"_claim_names": map[string]any{"groups": "src1"}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.verify(tok); err != nil {
		t.Fatal(err)
	}
	logs := f.logs.String()
	if n := strings.Count(logs, "token groups overage"); n != 1 {
		t.Errorf("got %d overage warnings, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs, principalA) {
		t.Errorf("overage warning does not name the principal:\n%s", logs)
	}
	for _, p := range tokenParts(tok) {
		if strings.Contains(logs, p) {
			t.Errorf("logs contain token bytes")
		}
	}
	if got := counterValue(t, f.reg, "mqtt_authproxy_token_groups_overage_total", nil); got != 1 {
		t.Errorf("got overage counter %v, want 1", got)
	}
}
