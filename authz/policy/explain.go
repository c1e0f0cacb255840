package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/topic"
)

// maxReasons bounds the reasons of one Explanation.
const maxReasons = 50

// Assignment describes a role or deny assignment as loaded, for
// explanations.
type Assignment struct {
	// File and Entry locate it (Entry as in Error).
	File, Entry string
	// Deny is true for a deny assignment.
	Deny bool
	// PrincipalID and PrincipalType are as written.
	PrincipalID, PrincipalType string
	// Role is the role's name, RoleID its GUID (empty for a custom role
	// without id).
	Role, RoleID string
	// Scope is the scope as written.
	Scope string
}

// String returns a one-line description.
func (a Assignment) String() string {
	p := a.PrincipalID
	if a.PrincipalType != "" {
		p += " (" + a.PrincipalType + ")"
	}
	return fmt.Sprintf("%s %s in %s: principal %s, role %q, scope %s", a.kind(), a.Entry, a.File, p, a.Role, a.Scope)
}

func (a Assignment) kind() string {
	if a.Deny {
		return "deny assignment"
	}
	return "role assignment"
}

func (a *assignment) export() *Assignment {
	return &Assignment{
		File: a.file, Entry: a.entry, Deny: a.deny,
		PrincipalID: a.principalID, PrincipalType: a.principalType,
		Role: a.role.name, RoleID: a.role.id, Scope: a.scope.raw,
	}
}

// Explanation is the answer to a can-i question: the decision, what made
// it, and for a denial by default why nothing granted it.
type Explanation struct {
	// Action and Topic are the question (Topic is a filter for Subscribe).
	Action authz.Action
	Topic  string
	// Decision is what Grants answers for the same question.
	Decision authz.Decision
	// Principals are the principals considered, in order.
	Principals []string
	// Assignment decided: the first (in file order) assignment of the
	// principals that grants the action on the deciding topic space, or the
	// deny assignment that denied it. Nil when nothing matched.
	Assignment *Assignment
	// Filter is what the deciding template resolved to.
	Filter string
	// Notes are facts about the identity that matter (a groups overage).
	Notes []string
	// Reasons explain a denial: why each assignment and topic space of the
	// principals did not grant the action, or why the topic is invalid.
	Reasons []string
}

// String prints the explanation over several lines.
func (e Explanation) String() string {
	var b strings.Builder
	verdict := "allowed"
	if !e.Decision.Allowed {
		verdict = "denied (" + e.Decision.Reason.String() + ")"
	}
	fmt.Fprintf(&b, "%s %q: %s\n", e.Action, e.Topic, verdict)
	if e.Decision.TopicSpace != "" {
		fmt.Fprintf(&b, "  topic space: %s\n", e.Decision.TopicSpace)
		fmt.Fprintf(&b, "  template:    %s", e.Decision.Template)
		if e.Filter != "" && e.Filter != e.Decision.Template {
			fmt.Fprintf(&b, " (resolved: %s)", e.Filter)
		}
		b.WriteString("\n")
	}
	if a := e.Assignment; a != nil {
		fmt.Fprintf(&b, "  assignment:  %s %s in %s\n", a.kind(), a.Entry, a.File)
		fmt.Fprintf(&b, "  principal:   %s", a.PrincipalID)
		if a.PrincipalType != "" {
			fmt.Fprintf(&b, " (%s)", a.PrincipalType)
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "  role:        %s\n", a.Role)
		fmt.Fprintf(&b, "  scope:       %s\n", a.Scope)
	}
	if len(e.Principals) == 0 {
		b.WriteString("principals considered: none\n")
	} else {
		fmt.Fprintf(&b, "principals considered: %s\n", strings.Join(e.Principals, ", "))
	}
	for _, n := range e.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if len(e.Reasons) > 0 {
		b.WriteString("why:\n")
		for _, r := range e.Reasons {
			fmt.Fprintf(&b, "  - %s\n", r)
		}
	}
	return b.String()
}

// Explain answers a question as Grants would and says why (for the can-i
// command). It is not on the packet path and may be slow.
func (s *Snapshot) Explain(id *authz.Identity, clientID string, action authz.Action, topicOrFilter string) Explanation {
	e := Explanation{Action: action, Topic: topicOrFilter}
	ps := principals(id)
	for _, p := range ps {
		if p.key == overageGroups && len(s.denyByPrincipal[overageGroups]) == 0 {
			continue // nothing to show: no deny assignment to a group
		}
		e.Principals = append(e.Principals, p.display)
	}
	if id != nil && id.GroupsOverage {
		e.Notes = append(e.Notes, fmt.Sprintf("the token has a groups overage: assignments to its %d listed groups do not apply (SPEC 2.1), and every deny assignment to a group (principalType Group) does", len(id.Groups)))
	}
	g := s.Grants(id, clientID)
	var r *rule
	publish := action == authz.Publish
	q := topicOrFilter
	switch action {
	case authz.Publish:
		e.Decision, r = g.publish1(q)
	case authz.Subscribe:
		e.Decision, r = g.subscribe1(q)
		if inner, ok := innerFilter(q); ok {
			q = inner
		}
	case authz.Receive:
		e.Decision, r = g.receive1(q)
	default:
		e.Decision = authz.Decision{Reason: authz.NoGrant}
		e.Reasons = append(e.Reasons, fmt.Sprintf("unknown action %d", action))
		return e
	}
	if r != nil {
		e.Filter = r.filter
	}
	switch e.Decision.Reason {
	case authz.InvalidTopic:
		e.Reasons = append(e.Reasons, invalidReason(action, topicOrFilter))
	case authz.NotDenied:
		e.Assignment = s.decidingAssignment(ps, false, publish, r.spaceIndex)
	case authz.DenyAssignment:
		e.Assignment = s.decidingAssignment(ps, true, publish, r.spaceIndex)
	case authz.NoGrant:
		e.Reasons = s.whyNot(ps, varsOf(id, clientID), action, q)
	}
	return e
}

// invalidReason says why a topic or filter is invalid.
func invalidReason(action authz.Action, q string) string {
	if action == authz.Subscribe {
		_, inner, shared, err := topic.SplitShared(q)
		switch {
		case err != nil:
			return fmt.Sprintf("invalid filter: %v", err)
		case strings.HasPrefix(inner, "$"):
			return "filters starting with '$' are reserved; only $share/<group>/<filter> is allowed (SPEC 3.1)"
		case !shared:
			return fmt.Sprintf("invalid filter: %v", topic.ValidateFilter(q))
		}
		return "invalid filter"
	}
	if err := topic.ValidateName(q); err != nil {
		return fmt.Sprintf("invalid topic name: %v", err)
	}
	return "topics starting with '$' are reserved (SPEC 3.1)"
}

// assignmentsOf returns the indexes of the principals' assignments (or deny
// assignments) in file order, without duplicates.
func (s *Snapshot) assignmentsOf(ps []principal, deny bool) []int32 {
	var out []int32
	for _, p := range ps {
		if deny {
			out = append(out, s.denyByPrincipal[p.key]...)
		} else {
			out = append(out, s.byPrincipal[p.key]...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// decidingAssignment returns the first assignment of the principals that
// holds the action on topic space sp.
func (s *Snapshot) decidingAssignment(ps []principal, deny, publish bool, sp int32) *Assignment {
	list := s.assignments
	if deny {
		list = s.denies
	}
	for _, i := range s.assignmentsOf(ps, deny) {
		a := &list[i]
		if a.role.grants(publish) && slices.Contains(a.spaces, sp) {
			return a.export()
		}
	}
	return nil
}

// whyNot lists why no assignment of the principals grants the action.
func (s *Snapshot) whyNot(ps []principal, vars topic.Vars, action authz.Action, q string) []string {
	publish := action == authz.Publish
	verb := "publish"
	if !publish {
		verb = "subscribe"
	}
	var reasons []string
	add := func(format string, args ...any) {
		reasons = append(reasons, fmt.Sprintf(format, args...))
	}
	idx := s.assignmentsOf(ps, false)
	var dropped []string
	for _, p := range ps {
		dropped = append(dropped, s.dropped[p.key]...)
	}
	if len(ps) == 0 {
		add("the identity has no principal (no authentication name, group or app role)")
	} else if len(idx) == 0 && len(dropped) == 0 {
		add("no role assignment names any of the principals considered")
	}
	reasons = append(reasons, dropped...)
	granted := make([]bool, len(s.spaces))
	explained := make([]bool, len(s.spaces))
	for _, i := range idx {
		a := &s.assignments[i]
		name := fmt.Sprintf("role assignment %s in %s (role %q, scope %s)", a.entry, a.file, a.role.name, a.scope.raw)
		switch {
		case !a.role.grants(publish):
			add("%s: the role does not grant the %s data action", name, verb)
			continue
		case len(a.spaces) == 0:
			add("%s grants %s, but %s", name, verb, a.outside)
			continue
		}
		for _, sp := range a.spaces {
			granted[sp] = true
			if explained[sp] {
				continue
			}
			explained[sp] = true
			for _, tpl := range s.spaces[sp].templates {
				add("%s", s.templateMiss(sp, tpl, vars, action, q))
			}
		}
	}
	// Topic spaces that would answer the question but that no assignment
	// with the action reaches.
	for sp := range s.spaces {
		if granted[sp] {
			continue
		}
		tpl, ok := s.wouldMatch(int32(sp), vars, action, q)
		if !ok {
			continue
		}
		n := 0
		for _, i := range idx {
			a := &s.assignments[i]
			if a.role.grants(publish) && len(a.spaces) > 0 {
				add("role assignment %s in %s grants %s at scope %s, which does not contain topic space %q (whose template %q would match)",
					a.entry, a.file, verb, a.scope.raw, s.spaces[sp].name, tpl)
				n++
			}
		}
		if n == 0 {
			add("topic space %q (template %q) would match, but no assignment grants these principals %s on it", s.spaces[sp].name, tpl, verb)
		}
	}
	if len(reasons) > maxReasons {
		more := len(reasons) - maxReasons
		reasons = append(reasons[:maxReasons], fmt.Sprintf("… and %d more", more))
	}
	return reasons
}

// templateMiss says why a template of a granted topic space does not answer
// the question.
func (s *Snapshot) templateMiss(sp int32, tpl topic.Template, vars topic.Vars, action authz.Action, q string) string {
	prefix := fmt.Sprintf("topic space %q template %q", s.spaces[sp].name, tpl.String())
	filters, err := tpl.ResolveAll(vars)
	if err != nil {
		return fmt.Sprintf("%s resolved to nothing: %v", prefix, err)
	}
	verb := "does not match topic"
	if action == authz.Subscribe {
		verb = "does not cover filter"
	}
	return fmt.Sprintf("%s resolved to %s, which %s %q", prefix, strings.Join(quoteAll(filters), ", "), verb, q)
}

// wouldMatch returns the first template of topic space sp that answers the
// question once resolved.
func (s *Snapshot) wouldMatch(sp int32, vars topic.Vars, action authz.Action, q string) (string, bool) {
	for _, tpl := range s.spaces[sp].templates {
		filters, err := tpl.ResolveAll(vars)
		if err != nil {
			continue
		}
		for _, f := range filters {
			if (action == authz.Subscribe && topic.Subset(q, f)) || (action != authz.Subscribe && topic.Match(f, q)) {
				return tpl.String(), true
			}
		}
	}
	return "", false
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
