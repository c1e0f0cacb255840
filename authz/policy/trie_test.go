package policy

import (
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/topic"
)

// This file checks the tries of Grants against the linear scan they
// replaced, kept here verbatim as the reference: for any rules and any
// question, the same Decision (TopicSpace and Template included) and the
// same deciding rule (what Explain reports).

// linearDecide is the decision procedure before the tries: deny, then
// allow, then default deny, each list in file order.
func linearDecide(deny, allow []rule, q string, denies, allows func(filter, q string) bool) (authz.Decision, *rule) {
	for i := range deny {
		if denies(deny[i].filter, q) {
			r := &deny[i]
			return authz.Decision{Reason: authz.DenyAssignment, TopicSpace: r.space, Template: r.template}, r
		}
	}
	for i := range allow {
		if allows(allow[i].filter, q) {
			r := &allow[i]
			return authz.Decision{Allowed: true, TopicSpace: r.space, Template: r.template}, r
		}
	}
	return authz.Decision{Reason: authz.NoGrant}, nil
}

func linearSubset(template, filter string) bool { return topic.Subset(filter, template) }

func (g *Grants) linearPublish(t string) (authz.Decision, *rule) {
	if !validTopic(t) {
		return authz.Decision{Reason: authz.InvalidTopic}, nil
	}
	if g == nil {
		return authz.Decision{Reason: authz.NoGrant}, nil
	}
	return linearDecide(g.denyPublish, g.publish, t, topic.Match, topic.Match)
}

func (g *Grants) linearSubscribe(filter string) (authz.Decision, *rule) {
	inner, ok := innerFilter(filter)
	if !ok {
		return authz.Decision{Reason: authz.InvalidTopic}, nil
	}
	if g == nil {
		return authz.Decision{Reason: authz.NoGrant}, nil
	}
	return linearDecide(g.denySubscribe, g.subscribe, inner, topic.Overlap, linearSubset)
}

func (g *Grants) linearReceive(t string) (authz.Decision, *rule) {
	if !validTopic(t) {
		return authz.Decision{Reason: authz.InvalidTopic}, nil
	}
	if g == nil {
		return authz.Decision{Reason: authz.NoGrant}, nil
	}
	return linearDecide(g.denySubscribe, g.subscribe, t, topic.Match, topic.Match)
}

// linearFirst is the index of the first rule whose filter answers q, or
// noRule: what trie.match and trie.subset must return.
func linearFirst(rules []rule, q string, answers func(filter, q string) bool) int32 {
	for i := range rules {
		if answers(rules[i].filter, q) {
			return int32(i)
		}
	}
	return noRule
}

// checkSame fails when the tries and the linear reference disagree on q,
// as a topic name (Publish, Receive) and as a filter (Subscribe, also
// shared), and on the raw answers of each trie.
func checkSame(t fataler, g *Grants, q string) {
	t.Helper()
	same := func(what string, got, want authz.Decision, gr, wr *rule) {
		t.Helper()
		if got != want || gr != wr {
			t.Fatalf("%s %q: trie %+v (rule %+v), linear %+v (rule %+v)", what, q, got, gr, want, wr)
		}
	}
	d, r := g.publish1(q)
	ld, lr := g.linearPublish(q)
	same("publish", d, ld, r, lr)
	d, r = g.receive1(q)
	ld, lr = g.linearReceive(q)
	same("receive", d, ld, r, lr)
	for _, f := range []string{q, "$share/g/" + q} {
		d, r = g.subscribe1(f)
		ld, lr = g.linearSubscribe(f)
		same("subscribe", d, ld, r, lr)
	}
	if g == nil {
		return
	}
	// The tries on their own, also for what the callers never pass them
	// ('$' topics, wildcards in names, invalid filters).
	for _, x := range []struct {
		name  string
		tr    *trie
		rules []rule
	}{
		{"publish", &g.publishTrie, g.publish}, {"subscribe", &g.subscribeTrie, g.subscribe},
		{"deny publish", &g.denyPublishTrie, g.denyPublish}, {"deny subscribe", &g.denySubscribeTrie, g.denySubscribe},
	} {
		if got, want := x.tr.match(q), linearFirst(x.rules, q, topic.Match); got != want {
			t.Fatalf("%s trie: match %q = %d, linear %d (rules %v)", x.name, q, got, want, filters(x.rules))
		}
		if got, want := x.tr.subset(q), linearFirst(x.rules, q, linearSubset); got != want {
			t.Fatalf("%s trie: subset %q = %d, linear %d (rules %v)", x.name, q, got, want, filters(x.rules))
		}
	}
}

func filters(rules []rule) []string {
	out := make([]string, len(rules))
	for i := range rules {
		out[i] = rules[i].filter
	}
	return out
}

// fataler is what checkSame needs of a *testing.T or *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// genLevels draws 1 to 5 levels joined by '/' from choices; first is added
// to the choices of the first level, last to those of the last one.
func genLevels(t *rapid.T, label string, choices, first, last []string) string {
	n := rapid.IntRange(1, 5).Draw(t, label+" levels")
	ls := make([]string, n)
	for i := range ls {
		c := choices
		if i == 0 {
			c = append(c[:len(c):len(c)], first...)
		}
		if i == n-1 {
			c = append(c[:len(c):len(c)], last...)
		}
		ls[i] = rapid.SampledFrom(c).Draw(t, label+" level")
	}
	return strings.Join(ls, "/")
}

// genQuery draws a topic name or filter, valid or not ('$' first levels,
// wildcards anywhere, empty levels): half the time over the alphabet of
// the rules, half the time near one of rules, so that most answer it.
func genQuery(t *rapid.T, rules []rule) string {
	if len(rules) == 0 || rapid.Bool().Draw(t, "random query") {
		return genLevels(t, "query", []string{"a", "b", "", "z", "+", "p"}, []string{"$s", "#"}, []string{"#"})
	}
	var ls []string
	for _, l := range strings.Split(rapid.SampledFrom(rules).Draw(t, "near").filter, "/") {
		switch rapid.IntRange(0, 4).Draw(t, "near level") {
		case 0: // a level of the question that the rule's may cover
			l = rapid.SampledFrom([]string{"a", "", "+", "z", "#"}).Draw(t, "other level")
		case 1:
			if l == "#" { // what '#' stands for: the parent level or more
				l = strings.Join(rapid.SliceOfN(rapid.SampledFrom([]string{"a", "", "+", "#"}), 0, 2).Draw(t, "hash levels"), "/")
				if l == "" {
					continue
				}
			}
		}
		ls = append(ls, l)
	}
	if q := strings.Join(ls, "/"); q != "" {
		return q
	}
	return "#"
}

// genRules draws a rule list; filters are mostly valid, sometimes not
// (empty, '#' not last or inside a level), which the trie leaves to a
// linear scan. Each rule names its own template, so that a wrong index
// shows. Wide lists have more first levels than maxScan.
func genRules(t *rapid.T, label string) []rule {
	n := rapid.IntRange(0, 24).Draw(t, label+" rules")
	var first []string
	if rapid.Bool().Draw(t, label+" wide") {
		for i := range maxScan + 4 {
			first = append(first, fmt.Sprintf("w%d", i))
		}
	}
	rules := make([]rule, n)
	for i := range rules {
		f := genLevels(t, label, []string{"a", "b", "", "+"}, append(first, "$s"), []string{"#"})
		switch rapid.IntRange(0, 20).Draw(t, label+" odd") {
		case 0:
			f = ""
		case 1:
			f += "/#/a"
		case 2:
			f += "#"
		}
		rules[i] = rule{filter: f, space: label, template: fmt.Sprintf("%s%d", label, i), spaceIndex: int32(i)}
	}
	return rules
}

// like returns rules with the filters of others and templates of its own,
// as when a principal holds publish and subscribe on the same spaces (the
// tries are then shared).
func like(others []rule, label string) []rule {
	rules := make([]rule, len(others))
	for i, r := range others {
		rules[i] = rule{filter: r.filter, space: label, template: fmt.Sprintf("%s%d", label, i)}
	}
	return rules
}

// Random rule lists and questions: the tries answer as the linear scan.
func TestTrieMatchesLinear(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		g := &Grants{publish: genRules(t, "pub"), denyPublish: genRules(t, "denypub")}
		if rapid.Bool().Draw(t, "same filters") {
			g.subscribe, g.denySubscribe = like(g.publish, "sub"), like(g.denyPublish, "denysub")
		} else {
			g.subscribe, g.denySubscribe = genRules(t, "sub"), genRules(t, "denysub")
		}
		g.index()
		all := append(append(append(g.publish[:len(g.publish):len(g.publish)], g.subscribe...), g.denyPublish...), g.denySubscribe...)
		for range 20 {
			checkSame(t, g, genQuery(t, all))
		}
	})
}

// genTemplate draws a valid template (SPEC 3.1) with variables.
func genTemplate(t *rapid.T) string {
	vars := []string{"${client.authenticationName}", "${client.clientId}", "${client.attributes.site}", "x${client.attributes.site}"}
	if tpl := genLevels(t, "template", append([]string{"a", "b", "", "+", "p"}, vars...), nil, []string{"#"}); tpl != "" {
		return tpl
	}
	return "/"
}

// Random policies and identities through Snapshot.Grants (variables,
// multi-valued attributes, unresolvable templates and the widest form of
// denies): the tries answer as the linear scan.
func TestGrantsTrieMatchesLinear(t *testing.T) {
	roles := []string{"", RolePublisher, RoleSubscriber, "Everything"}
	rapid.Check(t, func(t *rapid.T) {
		var b strings.Builder
		b.WriteString("topicSpaces:\n")
		nSpaces := rapid.IntRange(1, 4).Draw(t, "spaces")
		for i := range nSpaces {
			fmt.Fprintf(&b, "  - name: ts%d\n    topicTemplates:\n", i)
			for range rapid.IntRange(1, 4).Draw(t, "templates") {
				fmt.Fprintf(&b, "      - %q\n", genTemplate(t))
			}
		}
		b.WriteString("roleDefinitions:\n  - name: Everything\n    dataActions: [\"*\"]\n")
		for _, section := range []string{"roleAssignments", "denyAssignments"} {
			fmt.Fprintf(&b, "%s:\n", section)
			for i := range nSpaces {
				role := rapid.SampledFrom(roles).Draw(t, section)
				if role == "" || (section == "denyAssignments" && role == "Everything") {
					continue
				}
				fmt.Fprintf(&b, "%s\n", assign("p", role, fmt.Sprintf("%s/topicSpaces/ts%d", ns1, i)))
			}
		}
		s, err := build(testConfig("p.yaml"), []fileData{{name: "p.yaml", data: []byte(b.String())}})
		if err != nil {
			t.Fatalf("policy: %v\n%s", err, b.String())
		}
		sites := rapid.SliceOfN(rapid.SampledFrom([]string{"a", "b", "p", "", "a/b", "+"}), 0, 3).Draw(t, "sites")
		id := &authz.Identity{AuthenticationName: "p", Attributes: map[string][]string{"site": sites}}
		g := s.Grants(id, rapid.SampledFrom([]string{"a", "b", "", "x/y"}).Draw(t, "client id"))
		all := append(append(append(g.publish[:len(g.publish):len(g.publish)], g.subscribe...), g.denyPublish...), g.denySubscribe...)
		for range 20 {
			checkSame(t, g, genQuery(t, all))
		}
	})
}

// Cases the rules of SPEC 3.2 single out, through a trie with both literal
// lookups (a scan, and past maxScan children a map) and the odd filters.
func TestTrieEdgeCases(t *testing.T) {
	var filters []string
	for i := range maxScan + 2 {
		filters = append(filters, fmt.Sprintf("w%d/+", i)) // a root with many children
	}
	filters = append(filters, "x/#", "x/y", "x/+", "+/#", "#", "$s/#", "/#", "+/+/#", "/+/#", "a/#/b", "", "a#", "a/+/c", "a/b")
	g := &Grants{}
	for i, f := range filters {
		g.publish = append(g.publish, rule{filter: f, space: "s", template: fmt.Sprint(i)})
	}
	g.subscribe = like(g.publish, "sub")
	g.index()
	if g.publishTrie.odd == nil || !g.publishTrie.nodes[0].many {
		t.Fatalf("want odd filters and a root past maxScan: %+v", g.publishTrie)
	}
	for _, q := range []string{
		"x", "x/y", "x/y/z", "w3/q", "w9", "w10/", "/", "//", "$s", "$s/x", "$t/x", "a", "a/b", "a/x/c", "a/x/b",
		"a#", "#", "+", "+/#", "/#", "x/#", "a/+/c", "$share/g/x/#", "$share/g/#", "$s/#", "a/b/c/d/e/f/g",
	} {
		checkSame(t, g, q)
	}
	tests := []struct {
		rules     []string
		name      string
		want      int32
		wantCover int32
	}{
		{[]string{"x/y", "x/#"}, "x/y", 0, 0},             // first match in file order
		{[]string{"x/#", "x/y"}, "x/y", 0, 0},             // even when it is wider
		{[]string{"a/#"}, "a", 0, 0},                      // '#' matches the parent level
		{[]string{"a/+/#"}, "a", noRule, noRule},          // but '+' needs a level
		{[]string{"#", "+/#", "+"}, "$s", noRule, noRule}, // [MQTT-4.7.2-1]
		{[]string{"#", "$s/#"}, "$s/x", 1, 1},             // a literal '$' level matches
		{[]string{"+/+"}, "/", 0, 0},                      // '+' matches an empty level
		{[]string{"a/#/b"}, "a", noRule, noRule},          // odd: '#' not last
		{[]string{"a/#/b"}, "a/c", 0, 0},                  // (topic.Match stops at '#')
		{[]string{"b", "+/#"}, "#", 1, 1},                 // "#" ⊆ "+/#": no empty topic
		{[]string{"/+/#"}, "/#", 0, 0},                    // "/#" ⊆ "/+/#" likewise
	}
	for _, tt := range tests {
		rules := make([]rule, len(tt.rules))
		for i, f := range tt.rules {
			rules[i].filter = f
		}
		tr := newTrie(rules)
		if got := tr.match(tt.name); got != tt.want {
			t.Errorf("%q match %q = %d, want %d", tt.rules, tt.name, got, tt.want)
		}
		if got := tr.subset(tt.name); got != tt.wantCover {
			t.Errorf("%q subset %q = %d, want %d", tt.rules, tt.name, got, tt.wantCover)
		}
	}
}

// The tries answer without allocating on every path: scans, the map of a
// node past maxScan, '+', '#', odd filters and deny rules.
func TestTrieDoesNotAllocate(t *testing.T) {
	g := &Grants{}
	for i := range 3 * maxScan {
		f := fmt.Sprintf("n%d/+/t/#", i)
		g.publish = append(g.publish, rule{filter: f})
		g.denySubscribe = append(g.denySubscribe, rule{filter: fmt.Sprintf("d%d/x", i)})
	}
	g.publish = append(g.publish, rule{filter: "a/#/b"})
	g.subscribe = g.publish
	g.denyPublish = g.denySubscribe
	g.index()
	n := testing.AllocsPerRun(100, func() {
		g.Publish("n20/dev/t/x/y")
		g.Publish("d3/x")
		g.Receive("n2/dev/t")
		g.Receive("nowhere")
		g.Subscribe("n5/+/t/#")
		g.Subscribe("$share/g/n23/a/t/b")
	})
	if n != 0 {
		t.Errorf("got %v allocations per run, want 0", n)
	}
}

// FuzzGrantsTrie compares the tries with the linear scan on arbitrary
// rules and questions: rules are the lines of the first argument ("!"
// before a line makes it a deny rule), the second is the question.
func FuzzGrantsTrie(f *testing.F) {
	f.Add("a/#\n+/b\n!a/x", "a/x")
	f.Add("#\n+/#\n$s/#", "$s/x")
	f.Add("x/#\nx/y\nx/+\n!+/y", "x")
	f.Add("a/#/b\n\na#\n/#", "/")
	f.Fuzz(func(t *testing.T, rules, q string) {
		g := &Grants{}
		for i, l := range strings.Split(rules, "\n") {
			r := rule{space: "s", template: fmt.Sprint(i)}
			if f, ok := strings.CutPrefix(l, "!"); ok {
				r.filter = f
				g.denyPublish = append(g.denyPublish, r)
			} else {
				r.filter = l
				g.publish = append(g.publish, r)
			}
		}
		g.subscribe, g.denySubscribe = like(g.publish, "sub"), g.denyPublish[:len(g.denyPublish):len(g.denyPublish)]
		g.index()
		checkSame(t, g, q)
	})
}
