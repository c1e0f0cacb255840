package topic_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/topic"
)

// SPEC 3.1: templates are filters with variables standing for one level or
// part of one.
func TestParseTemplate(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // substring of the error; "" for a valid template
	}{
		{"literal", "devices/telemetry", ""},
		{"wildcards", "devices/+/telemetry/#", ""},
		{"root hash", "#", ""},
		{"authentication name level", "devices/${client.authenticationName}/telemetry", ""},
		{"client id level", "devices/${client.clientId}/#", ""},
		{"attribute level", "sites/${client.attributes.site}/+", ""},
		{"attribute key chars", "x/${client.attributes.x-ms_region.v2}", ""},
		{"part of a level", "dev-${client.clientId}/#", ""},
		{"two variables in a level", "${client.attributes.a}-${client.clientId}/x", ""},
		{"leading variable", "${client.authenticationName}/#", ""},
		{"literal dollar inside", "a/$b/c$", ""},
		{"brace alone", "a/{x}/}", ""},
		{"dollar brace literal elsewhere", "a/$/{", ""},

		{"empty", "", "empty topic"},
		{"reserved", "$SYS/#", "reserved"},
		{"reserved share", "$share/g/a", "reserved"},
		{"NUL", "a/\x00", "U+0000"},
		{"invalid UTF-8", "a/\xff", "UTF-8"},
		{"too long", strings.Repeat("a", topic.MaxLength+1), "longer than 65535"},
		{"unknown variable", "a/${client.name}", "unknown variable ${client.name}"},
		{"case matters", "a/${client.clientid}", "unknown variable"},
		{"not a client variable", "a/${principal}", "unknown variable"},
		{"empty variable", "a/${}", "unknown variable ${}"},
		{"unterminated", "a/${client.clientId", "unterminated variable at byte 2"},
		{"spans levels", "a/${client.clientId/x}", "unterminated variable"},
		{"empty key", "a/${client.attributes.}", "must be 1 to 256"},
		{"bad key", "a/${client.attributes.a b}", "may hold only"},
		{"wildcard key", "a/${client.attributes.+}", "may hold only"},
		{"long key", "a/${client.attributes." + strings.Repeat("k", 257) + "}", "must be 1 to 256"},
		{"variable with plus", "a/${client.clientId}+", "mixes a variable"},
		{"variable with hash", "a/#${client.clientId}", "mixes a variable"},
		{"hash not last", "a/#/b", "must be the last level"},
		{"plus in level", "a/b+", "whole level"},
		{"hash in level", "a/b#", "whole level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := topic.ParseTemplate(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseTemplate(%q): got error %v, want none", tt.in, err)
				}
				if tpl.String() != tt.in {
					t.Errorf("String() = %q, want %q", tpl.String(), tt.in)
				}
				if got, want := tpl.HasVariables(), strings.Contains(tt.in, "${"); got != want {
					t.Errorf("HasVariables() = %v, want %v", got, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseTemplate(%.40q): got error %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "template ") {
				t.Errorf("error %q does not name the template", err)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error is %d bytes long; long input must be shortened", len(err.Error()))
			}
		})
	}
}

func mustParse(t testing.TB, s string) topic.Template {
	t.Helper()
	tpl, err := topic.ParseTemplate(s)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

var testVars = topic.Vars{
	AuthenticationName: "6f1d",
	ClientID:           "dev-1",
	Attributes: map[string][]string{
		"site":  {"berlin"},
		"sites": {"berlin", "paris"},
		"dup":   {"x", "x"},
		"empty": {},
		"many":  strings.Split("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", ","),
		"four":  {"1", "2", "3", "4"},
		"five":  {"1", "2", "3", "4", "5"},
	},
}

// SPEC 3.1: resolution.
func TestResolveAll(t *testing.T) {
	tests := []struct {
		name    string
		tpl     string
		want    []string
		wantErr error
	}{
		{"no variables", "a/+/#", []string{"a/+/#"}, nil},
		{"authentication name", "devices/${client.authenticationName}/#", []string{"devices/6f1d/#"}, nil},
		{"client id in part of level", "c-${client.clientId}/x", []string{"c-dev-1/x"}, nil},
		{"attribute", "sites/${client.attributes.site}", []string{"sites/berlin"}, nil},
		{"leading variable", "${client.attributes.site}/#", []string{"berlin/#"}, nil},
		{"multi-valued", "s/${client.attributes.sites}/#", []string{"s/berlin/#", "s/paris/#"}, nil},
		{"same variable twice", "${client.attributes.sites}/${client.attributes.sites}", []string{"berlin/berlin", "paris/paris"}, nil},
		{"product", "${client.attributes.sites}/${client.attributes.four}", []string{
			"berlin/1", "berlin/2", "berlin/3", "berlin/4", "paris/1", "paris/2", "paris/3", "paris/4"}, nil},
		{"duplicates removed", "d/${client.attributes.dup}", []string{"d/x"}, nil},
		{"missing attribute", "a/${client.attributes.nope}", nil, topic.ErrValueMissing},
		{"attribute without values", "a/${client.attributes.empty}", nil, topic.ErrValueMissing},
		{"too many values", "a/${client.attributes.many}", nil, topic.ErrTooManyValues},
		{"product too large", "${client.attributes.four}/${client.attributes.five}", nil, topic.ErrTooManyValues},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mustParse(t, tt.tpl).ResolveAll(testVars)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("ResolveAll: got error %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ResolveAll = %q, want %q", got, tt.want)
			}
			one, ok := mustParse(t, tt.tpl).Resolve(testVars)
			if wantOK := len(tt.want) == 1; ok != wantOK || (ok && one != tt.want[0]) {
				t.Errorf("Resolve = %q, %v; want %v", one, ok, wantOK)
			}
		})
	}
}

// SPEC 3.1: a value that is missing, empty, or contains / + # or NUL makes
// the template match nothing; it never widens a match. The hostile values
// are tried in every variable position.
func TestResolveNeverWidens(t *testing.T) {
	hostile := []struct {
		name  string
		value string
		want  error
	}{
		{"hash", "#", topic.ErrValueInvalid},
		{"plus", "+", topic.ErrValueInvalid},
		{"levels with plus", "a/+/b", topic.ErrValueInvalid},
		{"levels", "a/b", topic.ErrValueInvalid},
		{"empty", "", topic.ErrValueEmpty},
		{"NUL", "a\x00", topic.ErrValueInvalid},
		{"invalid UTF-8", "\xff", topic.ErrValueInvalid},
		{"70000 characters", strings.Repeat("x", 70000), topic.ErrResolvedTooLong},
		{"dollar at start", "$SYS", topic.ErrResolvedReserved},
	}
	templates := []string{
		"${client.authenticationName}/#",
		"devices/${client.clientId}/telemetry",
		"sites/x-${client.attributes.site}/+",
	}
	for _, h := range hostile {
		for _, tpl := range templates {
			t.Run(h.name+" in "+tpl, func(t *testing.T) {
				v := topic.Vars{AuthenticationName: h.value, ClientID: h.value,
					Attributes: map[string][]string{"site": {h.value}}}
				tp := mustParse(t, tpl)
				got, err := tp.ResolveAll(v)
				want := h.want
				if h.want == topic.ErrResolvedReserved && !strings.HasPrefix(tpl, "${") {
					want = nil // '$' inside a level is an ordinary character
				}
				if !errors.Is(err, want) || (err == nil) != (want == nil) {
					t.Fatalf("ResolveAll: got %q, %v; want error %v", got, err, want)
				}
				if err != nil {
					var re *topic.ResolveError
					if !errors.As(err, &re) {
						t.Errorf("error %T is not a *ResolveError", err)
					}
					if f, ok := tp.Resolve(v); ok {
						t.Errorf("Resolve = %q, true; want nothing", f)
					}
					return
				}
				for _, f := range got {
					if !topic.Subset(f, tp.Widest()) || levels(f) != levels(tpl) {
						t.Errorf("resolved %q is wider than template %q", f, tpl)
					}
				}
			})
		}
	}
	// A multi-valued attribute with one hostile value resolves to nothing,
	// not to the other values.
	v := topic.Vars{Attributes: map[string][]string{"site": {"ok", "#"}}}
	if got, err := mustParse(t, "s/${client.attributes.site}").ResolveAll(v); err == nil {
		t.Errorf("ResolveAll with one hostile value = %q, want an error", got)
	}
}

func TestWidest(t *testing.T) {
	tests := []struct{ tpl, want string }{
		{"a/b/#", "a/b/#"},
		{"devices/${client.authenticationName}/#", "devices/+/#"},
		{"dev-${client.clientId}/x/${client.attributes.k}", "+/x/+"},
	}
	for _, tt := range tests {
		t.Run(tt.tpl, func(t *testing.T) {
			if got := mustParse(t, tt.tpl).Widest(); got != tt.want {
				t.Errorf("Widest() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestZeroTemplate(t *testing.T) {
	var zero topic.Template
	if f, ok := zero.Resolve(testVars); ok {
		t.Errorf("zero Template resolved to %q", f)
	}
	if fs, err := zero.ResolveAll(testVars); err == nil {
		t.Errorf("zero Template resolved to %q", fs)
	}
}

func TestResolveNoVariablesDoesNotAllocate(t *testing.T) {
	tp := mustParse(t, "a/+/#")
	if n := testing.AllocsPerRun(100, func() { _, _ = tp.Resolve(testVars) }); n != 0 {
		t.Errorf("got %v allocations, want 0", n)
	}
}
