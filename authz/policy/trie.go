package policy

import (
	"math"
	"strings"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/topic"
)

// A trie indexes the resolved filters of one rule list by level, so that
// Publish and Receive (SPEC 3.2, 3.4: does some template match topic T?)
// and the allow side of Subscribe (is filter F ⊆ some single template?)
// cost the levels of the question and the trie branches they reach instead
// of one topic.Match or topic.Subset per rule: a connection granted many
// templates is judged on every packet.
//
// The answers must be those of the linear scan in file order that the
// trie replaces (the reported TopicSpace and Template included; the
// differential tests of trie_test.go check it). Every terminal therefore
// records the smallest index of the rules ending there, and a walk takes
// the minimum over all the terminals it reaches: the first rule in file
// order among those that match. Deny and allow rules are in separate
// tries, so deny still wins whatever the indexes (SPEC 3.3).
//
// The trie is built once per connection (Snapshot.Grants) and only read
// afterwards, so it is safe for concurrent use. Walking it does not
// allocate: levels are substrings of the question, and a map lookup with a
// substring key does not copy it.
type trie struct {
	// rules are the rules indexed, whose filters hold the levels of the
	// nodes.
	rules []rule
	// nodes[0] is the root (the empty prefix); nodes is empty when the
	// list is.
	nodes []trieNode
	// edges index the literal children of the nodes with more than
	// maxScan of them (trieNode.many). Most nodes have a handful, which a
	// scan finds faster than a hash, and building no map keeps the compile
	// cost low; a policy with hundreds of literal templates under one
	// level still gets a lookup that does not grow with them.
	edges map[trieEdge]int32
	// odd are the indexes of the rules whose filter the trie cannot
	// represent exactly: empty, or with '#' elsewhere than as the whole
	// last level. Resolved templates never are; should one be, it is
	// matched linearly, as before, so the answers do not change.
	odd []int32
}

// maxScan is the number of literal children above which a node's children
// are looked up in trie.edges rather than scanned.
const maxScan = 8

// trieEdge is the key of a literal child in trie.edges.
type trieEdge struct {
	parent int32
	level  string
}

// trieNode is one prefix of filters (a sequence of levels). Node indexes
// are int32 and 0 means none: the root is nobody's child.
type trieNode struct {
	// The literal level from the parent to this node is
	// rules[rule].filter[from:to] (empty for the root and '+' children):
	// offsets rather than a string keep the nodes free of pointers, so
	// smaller and not scanned by the garbage collector.
	rule, from, to int32
	// child is the first literal child, next the next literal child of
	// the same parent.
	child, next int32
	// plus is the child reached by a '+' level.
	plus int32
	// end is the smallest index of the rules whose filter is exactly this
	// prefix; noRule when none.
	end int32
	// hash is the smallest index of the rules whose filter is this prefix
	// followed by a '#' level ("#" itself at the root); noRule when none.
	hash int32
	// many is set when the literal children are also in trie.edges.
	many bool
}

// noRule is the index of no rule: larger than any, so that min ignores it.
const noRule int32 = math.MaxInt32

// newTrie indexes the filters of rules.
func newTrie(rules []rule) trie {
	if len(rules) == 0 {
		return trie{}
	}
	// Every level adds at most one node: size the nodes once.
	levels := 1
	for i := range rules {
		levels += strings.Count(rules[i].filter, "/") + 1
	}
	t := trie{rules: rules, nodes: make([]trieNode, 1, levels)}
	t.nodes[0] = trieNode{end: noRule, hash: noRule}
	for i := range rules {
		if !t.insert(int32(i)) {
			t.odd = append(t.odd, int32(i))
		}
	}
	// Templates share prefixes, so far fewer nodes are used than levels
	// were reserved; the grants live as long as the connection, so keep
	// only what is used (issue 5: memory per idle connection).
	if len(t.nodes) < cap(t.nodes)/2 {
		t.nodes = append([]trieNode(nil), t.nodes...)
	}
	return t
}

// newTrieLike is newTrie(rules), sharing built, the trie of other, when
// both lists have the same filters in the same order: a trie depends on
// nothing else, and the principals that hold both publish and subscribe on
// the same topic spaces (the usual device) get two equal lists.
func newTrieLike(rules, other []rule, built trie) trie {
	if len(rules) != len(other) {
		return newTrie(rules)
	}
	for i := range rules {
		if rules[i].filter != other[i].filter {
			return newTrie(rules)
		}
	}
	return built
}

// insert adds the filter of rule r; false when it is odd (see trie.odd) and
// was not added.
func (t *trie) insert(r int32) bool {
	filter := t.rules[r].filter
	if filter == "" {
		return false
	}
	if i := strings.IndexByte(filter, '#'); i >= 0 && (filter[i:] != "#" || (i > 0 && filter[i-1] != '/')) {
		// topic.Match stops at a '#' level wherever it is, yet does not
		// let "a/#/b" match "a"; rather than model that, leave it out,
		// with '#' inside a level ("a#"), which is as invalid.
		return false
	}
	n := int32(0)
	for i := 0; ; {
		level, next := nextLevel(filter, i)
		if level == "#" {
			t.nodes[n].hash = min(t.nodes[n].hash, r)
			return true
		}
		n = t.child(n, level, r, int32(i))
		if next < 0 {
			t.nodes[n].end = min(t.nodes[n].end, r)
			return true
		}
		i = next
	}
}

// child returns the child of n by level, adding it when missing; level is
// t.rules[r].filter[from:from+len(level)].
func (t *trie) child(n int32, level string, r, from int32) int32 {
	if level == "+" {
		if c := t.nodes[n].plus; c != 0 {
			return c
		}
		c := t.add(trieNode{})
		t.nodes[n].plus = c
		return c
	}
	if c := t.literal(n, level); c != 0 {
		return c
	}
	c := t.add(trieNode{rule: r, from: from, to: from + int32(len(level)), next: t.nodes[n].child})
	t.nodes[n].child = c
	switch {
	case t.nodes[n].many:
		t.edges[trieEdge{n, level}] = c
	case t.count(n) > maxScan:
		if t.edges == nil {
			t.edges = make(map[trieEdge]int32)
		}
		for c := t.nodes[n].child; c != 0; c = t.nodes[c].next {
			t.edges[trieEdge{n, t.level(c)}] = c
		}
		t.nodes[n].many = true
	}
	return c
}

// add appends a node without rules and returns its index.
func (t *trie) add(nd trieNode) int32 {
	nd.end, nd.hash = noRule, noRule
	t.nodes = append(t.nodes, nd)
	return int32(len(t.nodes) - 1)
}

// count returns the number of literal children of n.
func (t *trie) count(n int32) int {
	k := 0
	for c := t.nodes[n].child; c != 0; c = t.nodes[c].next {
		k++
	}
	return k
}

// level returns the literal level from the parent of c to c.
func (t *trie) level(c int32) string {
	nd := &t.nodes[c]
	return t.rules[nd.rule].filter[nd.from:nd.to]
}

// literal returns the child of n by the literal level, or 0. It does not
// allocate.
func (t *trie) literal(n int32, level string) int32 {
	if t.nodes[n].many {
		return t.edges[trieEdge{n, level}]
	}
	for c := t.nodes[n].child; c != 0; c = t.nodes[c].next {
		if t.level(c) == level {
			return c
		}
	}
	return 0
}

// match returns the smallest index of the rules whose filter matches the
// topic name (topic.Match(filter, name)), or noRule. It does not allocate.
func (t *trie) match(name string) int32 {
	best := noRule
	if name == "" {
		return best
	}
	if len(t.nodes) > 0 {
		// [MQTT-4.7.2-1]: a topic starting with '$' is not matched by a
		// filter whose first level is '+' or '#': skip them at the root.
		t.matchFrom(0, name, 0, name[0] == '$', &best)
	}
	for _, r := range t.odd {
		if r < best && topic.Match(t.rules[r].filter, name) {
			best = r
		}
	}
	return best
}

// matchFrom lowers *best with the rules below node n that match the levels
// of name from byte i on (there is a level at i, possibly empty: "a/" has
// two levels). noWild skips the wildcards of n.
func (t *trie) matchFrom(n int32, name string, i int, noWild bool, best *int32) {
	nd := &t.nodes[n]
	if !noWild {
		// '#' matches this level and every level below it.
		*best = min(*best, nd.hash)
	}
	level, next := nextLevel(name, i)
	if c := t.literal(n, level); c != 0 {
		t.matchChild(c, name, next, best)
	}
	if nd.plus != 0 && !noWild {
		// '+' matches exactly one level, even an empty one.
		t.matchChild(nd.plus, name, next, best)
	}
}

// matchChild goes on at child c with the levels of name from next on, or
// takes c's terminals when the name has no more levels.
func (t *trie) matchChild(c int32, name string, next int, best *int32) {
	if next >= 0 {
		t.matchFrom(c, name, next, false, best)
		return
	}
	// The name ends here: the filters ending here match, and so do those
	// ending with one more '#' level, which also matches its parent level
	// [MQTT-4.7.1-2] ("a/#" matches "a").
	*best = min(*best, t.nodes[c].end, t.nodes[c].hash)
}

// subset returns the smallest index of the rules whose filter covers the
// filter f (topic.Subset(f, filter): every topic f matches, the filter
// matches, SPEC 3.2), or noRule. It does not allocate.
func (t *trie) subset(f string) int32 {
	best := noRule
	if f == "" {
		return best
	}
	if len(t.nodes) > 0 {
		// [MQTT-4.7.2-1]: a filter starting with a wildcard does not
		// cover one starting with '$'.
		t.subsetFrom(0, f, 0, f[0] == '$', &best)
	}
	for _, r := range t.odd {
		if r < best && topic.Subset(f, t.rules[r].filter) {
			best = r
		}
	}
	return best
}

// subsetFrom lowers *best with the rules below node n that cover the levels
// of f from byte i on, following topic.Subset level by level. noWild skips
// the wildcards of n.
func (t *trie) subsetFrom(n int32, f string, i int, noWild bool, best *int32) {
	nd := &t.nodes[n]
	if !noWild {
		// A '#' level in the rule covers whatever f has from here on.
		*best = min(*best, nd.hash)
	}
	level, next := nextLevel(f, i)
	if level == "#" {
		// f also matches its parent topic, which only a '#' in the rule
		// at this level covers (taken above) — unless that parent is the
		// empty topic, which does not exist ("#", "/#"): then a rule
		// ending with "+/#" here covers f too (see topic.Subset).
		if (i == 0 || (i == 1 && f[0] == '/')) && nd.plus != 0 && !noWild {
			*best = min(*best, t.nodes[nd.plus].hash)
		}
		return
	}
	if level != "+" {
		// A literal needs an equal literal (or a wildcard, below).
		if c := t.literal(n, level); c != 0 {
			t.subsetChild(c, f, next, best)
		}
	}
	if nd.plus != 0 && !noWild {
		// '+' in the rule covers a literal or '+' in f.
		t.subsetChild(nd.plus, f, next, best)
	}
}

// subsetChild goes on at child c with the levels of f from next on, or
// takes the rules that end with f: exactly, or with one more '#' level.
func (t *trie) subsetChild(c int32, f string, next int, best *int32) {
	if next >= 0 {
		t.subsetFrom(c, f, next, false, best)
		return
	}
	*best = min(*best, t.nodes[c].end, t.nodes[c].hash)
}

// nextLevel returns the level of s starting at byte i, and the index where
// the next level starts, or -1 when this is the last level.
func nextLevel(s string, i int) (level string, next int) {
	if j := strings.IndexByte(s[i:], '/'); j >= 0 {
		return s[i : i+j], i + j + 1
	}
	return s[i:], -1
}
