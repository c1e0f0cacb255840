package topic_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/topic"
)

// maxUniverse bounds the brute-force enumeration per fuzz input.
const maxUniverse = 20000

// universeSize returns an upper bound on len(universe(depth, f, t)).
func universeSize(depth int, filters ...string) int {
	seen := map[string]bool{}
	for _, f := range filters {
		for _, l := range strings.Split(f, "/") {
			seen[l] = true
		}
	}
	n, size := len(seen)+1, 1
	for range depth {
		size *= n
		if size > maxUniverse {
			return size
		}
	}
	return size
}

// FuzzSubset checks Subset, Overlap and Match against the brute-force
// reference (SPEC 3.2, STYLE 42). Arbitrary strings must never panic; valid
// small filters are compared exactly.
func FuzzSubset(f *testing.F) {
	for _, seed := range [][2]string{
		{"a/b", "a/+"}, {"a/#", "a/+/#"}, {"#", "+/#"}, {"/#", "/+/#"},
		{"$SYS/x", "#"}, {"+/x", "$SYS/x"}, {"a//b", "a/+/b"}, {"+", "/#"},
		{"a/+/#", "a/b/c"}, {"#", "#"}, {"a/#/b", "a"}, {"", "#"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		sub, ov := topic.Subset(a, b), topic.Overlap(a, b)
		_ = topic.Match(a, b)
		if topic.ValidateFilter(a) != nil || topic.ValidateFilter(b) != nil {
			return
		}
		if ov != topic.Overlap(b, a) {
			t.Fatalf("Overlap(%q, %q) = %v is not symmetric", a, b, ov)
		}
		depth := max(levels(a), levels(b)) + 1
		if universeSize(depth, a, b) > maxUniverse {
			return
		}
		wantSub, wantOv := true, false
		var escape string
		for _, tp := range universe(depth, a, b) {
			ma, mb := topic.Match(a, tp), topic.Match(b, tp)
			if ra := refMatch(a, tp); ma != ra {
				t.Fatalf("Match(%q, %q) = %v, reference %v", a, tp, ma, ra)
			}
			if rb := refMatch(b, tp); mb != rb {
				t.Fatalf("Match(%q, %q) = %v, reference %v", b, tp, mb, rb)
			}
			if ma && !mb && wantSub {
				wantSub, escape = false, tp
			}
			wantOv = wantOv || (ma && mb)
		}
		if sub != wantSub {
			t.Fatalf("Subset(%q, %q) = %v, want %v (topic %q)", a, b, sub, wantSub, escape)
		}
		if ov != wantOv {
			t.Fatalf("Overlap(%q, %q) = %v, want %v", a, b, ov, wantOv)
		}
	})
}

var attrRef = regexp.MustCompile(`\$\{client\.attributes\.([A-Za-z0-9_.-]+)\}`)

// FuzzParseTemplate: no panic; parse → String → parse is stable; a resolved
// filter is a valid filter, with exactly the template's levels, never '$'
// first, and within the template's widest form (SPEC 3.1: never widen).
func FuzzParseTemplate(f *testing.F) {
	for _, seed := range [][3]string{
		{"devices/${client.authenticationName}/#", "6f1d", "x"},
		{"dev-${client.clientId}/+/x", "a", "#"},
		{"${client.attributes.site}/${client.attributes.site}", "n", "a/b"},
		{"a/${client.attributes.k}-${client.clientId}/#", "n", ""},
		{"${client.authenticationName}", "$SYS", "c"},
		{"a/${client.clientId", "n", "c"},
		{"a/${client.x}/b", "n", "c"},
		{"$SYS/#", "n", "c"},
		{"x/${client.attributes.k}#", "n", "c"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, s, name, value string) {
		tp, err := topic.ParseTemplate(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "template ") {
				t.Fatalf("error %q does not name the template", err)
			}
			return
		}
		if tp.String() != s {
			t.Fatalf("String() = %q, want %q", tp.String(), s)
		}
		again, err := topic.ParseTemplate(tp.String())
		if err != nil || again.String() != s {
			t.Fatalf("reparse of %q: %q, %v", s, again.String(), err)
		}
		if strings.HasPrefix(s, "$") && !strings.HasPrefix(s, "${") {
			t.Fatalf("reserved template %q accepted", s)
		}
		widest := tp.Widest()
		if err := topic.ValidateFilter(widest); err != nil {
			t.Fatalf("Widest() = %q: %v", widest, err)
		}
		attrs := map[string][]string{}
		for _, m := range attrRef.FindAllStringSubmatch(s, -1) {
			attrs[m[1]] = []string{value, name}
		}
		for _, v := range []topic.Vars{
			{AuthenticationName: name, ClientID: value, Attributes: attrs},
			{AuthenticationName: value, ClientID: name},
		} {
			fs, err := tp.ResolveAll(v)
			if err != nil {
				if len(fs) != 0 {
					t.Fatalf("ResolveAll returned %q with error %v", fs, err)
				}
				continue
			}
			if len(fs) == 0 || len(fs) > topic.MaxResolved {
				t.Fatalf("ResolveAll returned %d filters", len(fs))
			}
			for _, r := range fs {
				if err := topic.ValidateFilter(r); err != nil {
					t.Fatalf("resolved %q of %q is not a valid filter: %v", r, s, err)
				}
				if levels(r) != levels(s) {
					t.Fatalf("resolved %q has %d levels, template %q has %d", r, levels(r), s, levels(s))
				}
				if strings.HasPrefix(r, "$") {
					t.Fatalf("resolved %q is reserved", r)
				}
				if !topic.Subset(r, widest) {
					t.Fatalf("resolved %q is not within %q", r, widest)
				}
			}
		}
	})
}
