package policy

import (
	"strings"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/topic"
)

// Grants are the compiled permissions of one connection: the resolved
// filters of the templates of every topic space on which the connection's
// principals hold publish or subscribe, or a deny assignment. They answer
// per packet without allocating and are immutable, so safe for concurrent
// use. A nil *Grants denies everything.
type Grants struct {
	publish, subscribe         []rule
	denyPublish, denySubscribe []rule
	// The tries index the lists above (same order, same indexes), so that
	// the per-packet answers do not scan every rule (see trie).
	publishTrie, subscribeTrie         trie
	denyPublishTrie, denySubscribeTrie trie
}

// rule is one resolved filter with what it came from, in file order.
type rule struct {
	filter     string
	space      string
	template   string
	spaceIndex int32
}

// Flags of a topic space while compiling.
const (
	flagPublish uint8 = 1 << iota
	flagSubscribe
	flagDenyPublish
	flagDenySubscribe
)

// Grants compiles the permissions of a connection (SPEC 3.3): the
// principals considered are id.AuthenticationName, each of id.Groups unless
// id.GroupsOverage (SPEC 2.1), and approle:<r> for each of id.AppRoles; the
// permission on a topic space is the union over their assignments whose
// scope contains it. Templates are resolved with the identity's variables
// and clientID (the client id the client chose). A nil id gets no grant.
//
// The cost is that of the principals' own assignments (indexed at load) and
// of resolving the templates of the topic spaces they reach, whatever the
// size of the policy; identities whose grants cannot differ share one
// compiled copy (grantsCache), so a reconnect pays only a map look-up.
func (s *Snapshot) Grants(id *authz.Identity, clientID string) *Grants {
	if s == nil || id == nil {
		return &Grants{}
	}
	key := s.grantsKey(id, clientID)
	if g := s.grants.get(key); g != nil {
		return g
	}
	g := s.compile(id, clientID)
	s.grants.put(key, g)
	return g
}

// compile builds the Grants of id and clientID (see Grants).
func (s *Snapshot) compile(id *authz.Identity, clientID string) *Grants {
	g := &Grants{}
	flags := s.spaceFlags(principals(id))
	vars := varsOf(id, clientID)
	for i := range s.spaces {
		f := flags[i]
		if f == 0 {
			continue
		}
		sp := &s.spaces[i]
		for _, tpl := range sp.templates {
			filters, err := tpl.ResolveAll(vars)
			add := func(list *[]rule, fs []string) {
				for _, fl := range fs {
					*list = append(*list, rule{filter: fl, space: sp.name, template: tpl.String(), spaceIndex: int32(i)})
				}
			}
			if err == nil {
				// An allow whose template resolves to nothing grants
				// nothing (SPEC 3.1).
				if f&flagPublish != 0 {
					add(&g.publish, filters)
				}
				if f&flagSubscribe != 0 {
					add(&g.subscribe, filters)
				}
			}
			if f&(flagDenyPublish|flagDenySubscribe) != 0 {
				if err != nil {
					// A deny must not be escaped with a missing or hostile
					// value: deny the template's widest form instead.
					filters = []string{tpl.Widest()}
				}
				if f&flagDenyPublish != 0 {
					add(&g.denyPublish, filters)
				}
				if f&flagDenySubscribe != 0 {
					add(&g.denySubscribe, filters)
				}
			}
		}
	}
	g.index()
	return g
}

// index builds the tries of the rule lists, once per connection, so that
// every packet after it is answered without scanning the lists (SPEC 3.2).
func (g *Grants) index() {
	g.publishTrie = newTrie(g.publish)
	g.subscribeTrie = newTrieLike(g.subscribe, g.publish, g.publishTrie)
	g.denyPublishTrie = newTrie(g.denyPublish)
	g.denySubscribeTrie = newTrieLike(g.denySubscribe, g.denyPublish, g.denyPublishTrie)
}

// spaceFlags returns, per topic space, what the principals hold on it.
// Flags are ORed, so the order of principals does not matter.
func (s *Snapshot) spaceFlags(ps []principal) []uint8 {
	flags := make([]uint8, len(s.spaces))
	mark := func(a *assignment, pub, sub uint8) {
		var f uint8
		if a.role.publish {
			f |= pub
		}
		if a.role.subscribe {
			f |= sub
		}
		if f == 0 {
			return
		}
		for _, sp := range a.spaces {
			flags[sp] |= f
		}
	}
	for _, p := range ps {
		for _, i := range s.byPrincipal[p.key] {
			mark(&s.assignments[i], flagPublish, flagSubscribe)
		}
		for _, i := range s.denyByPrincipal[p.key] {
			mark(&s.denies[i], flagDenyPublish, flagDenySubscribe)
		}
	}
	return flags
}

// Publish decides a PUBLISH (or Will) to topic (SPEC 3.2): denied with
// InvalidTopic when the topic name is invalid or reserved ('$'), with
// DenyAssignment when a deny template matches it, allowed when a publish
// template matches it, NoGrant otherwise. It does not allocate.
func (g *Grants) Publish(t string) authz.Decision {
	d, _ := g.publish1(t)
	return d
}

func (g *Grants) publish1(t string) (authz.Decision, *rule) {
	if !validTopic(t) {
		return authz.Decision{Reason: authz.InvalidTopic}, nil
	}
	if g == nil {
		return authz.Decision{Reason: authz.NoGrant}, nil
	}
	// Deny wins (SPEC 3.3): the allow rules matter only when no deny does.
	if d := g.denyPublishTrie.match(t); d != noRule {
		return denial(&g.denyPublish[d])
	}
	return allowance(g.publish, g.publishTrie.match(t))
}

// Subscribe decides one SUBSCRIBE filter on its own (SPEC 3.2): the filter
// must be covered by one single subscribe template (filter ⊆ template). A
// shared subscription $share/<group>/<filter> is judged on <filter>; any
// other filter starting with '$' is InvalidTopic (SPEC 3.1). A filter that
// could receive a topic a deny template covers is denied as a whole (deny
// wins). It does not allocate.
func (g *Grants) Subscribe(filter string) authz.Decision {
	d, _ := g.subscribe1(filter)
	return d
}

func (g *Grants) subscribe1(filter string) (authz.Decision, *rule) {
	inner, ok := innerFilter(filter)
	if !ok {
		return authz.Decision{Reason: authz.InvalidTopic}, nil
	}
	if g == nil {
		return authz.Decision{Reason: authz.NoGrant}, nil
	}
	// Deny assignments are usually few, and a filter is denied when it
	// merely overlaps one, which the trie does not answer: scan them in
	// file order.
	for i := range g.denySubscribe {
		if topic.Overlap(g.denySubscribe[i].filter, inner) {
			return denial(&g.denySubscribe[i])
		}
	}
	return allowance(g.subscribe, g.subscribeTrie.subset(inner))
}

// Receive decides the delivery of a PUBLISH from the broker (SPEC 3.4): it
// is allowed when a subscribe template matches the topic, so that an
// upstream session that outlived a permission delivers nothing. It does not
// allocate.
func (g *Grants) Receive(t string) authz.Decision {
	d, _ := g.receive1(t)
	return d
}

func (g *Grants) receive1(t string) (authz.Decision, *rule) {
	if !validTopic(t) {
		return authz.Decision{Reason: authz.InvalidTopic}, nil
	}
	if g == nil {
		return authz.Decision{Reason: authz.NoGrant}, nil
	}
	if d := g.denySubscribeTrie.match(t); d != noRule {
		return denial(&g.denySubscribe[d])
	}
	return allowance(g.subscribe, g.subscribeTrie.match(t))
}

// denial is the decision of deny rule r.
func denial(r *rule) (authz.Decision, *rule) {
	return authz.Decision{Reason: authz.DenyAssignment, TopicSpace: r.space, Template: r.template}, r
}

// allowance is the decision of allow[i], the first allow rule that matches
// (noRule: none does, denied by default). It returns the deciding rule.
func allowance(allow []rule, i int32) (authz.Decision, *rule) {
	if i == noRule {
		return authz.Decision{Reason: authz.NoGrant}, nil
	}
	r := &allow[i]
	return authz.Decision{Allowed: true, TopicSpace: r.space, Template: r.template}, r
}

// validTopic reports whether t is a valid, unreserved topic name.
func validTopic(t string) bool {
	return topic.ValidateName(t) == nil && t[0] != '$'
}

// innerFilter returns the filter a SUBSCRIBE filter is judged on: the inner
// filter of a shared subscription, or the filter itself; ok is false for an
// invalid or reserved filter.
func innerFilter(filter string) (string, bool) {
	_, inner, shared, err := topic.SplitShared(filter)
	if err != nil {
		return "", false
	}
	if !shared && topic.ValidateFilter(inner) != nil {
		return "", false
	}
	if strings.HasPrefix(inner, "$") {
		return "", false
	}
	return inner, true
}
