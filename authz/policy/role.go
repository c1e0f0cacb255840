package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
)

// Data actions of Event Grid topic spaces (SPEC 3.3).
const (
	// ActionPublish is the data action that allows PUBLISH.
	ActionPublish = "Microsoft.EventGrid/topicSpaces/publish/action"
	// ActionSubscribe is the data action that allows SUBSCRIBE and
	// receiving (SPEC 3.4).
	ActionSubscribe = "Microsoft.EventGrid/topicSpaces/subscribe/action"
)

// Built-in roles (SPEC 3.3), referable by name or id.
const (
	// RolePublisher is the name of the built-in publisher role.
	RolePublisher = "EventGrid TopicSpaces Publisher"
	// RolePublisherID is its role definition id.
	RolePublisherID = "a12b0b94-b317-4dcd-84a8-502ce99884c6"
	// RoleSubscriber is the name of the built-in subscriber role.
	RoleSubscriber = "EventGrid TopicSpaces Subscriber"
	// RoleSubscriberID is its role definition id.
	RoleSubscriberID = "4b0f2fd7-60b4-4eca-896f-4435034f8bf5"
)

// permission is one block of a role definition: Azure allows an action
// matched by some dataActions pattern and by no notDataActions pattern of
// the same block.
type permission struct {
	dataActions, notDataActions []string // lower-cased patterns
}

// role is a resolved role definition with what it grants on topic spaces
// precomputed, so that nothing is matched per packet or per connection.
type role struct {
	name, id           string // id: lower-case GUID, may be empty for custom roles
	builtin            bool
	where              string // file and entry of a custom role
	publish, subscribe bool
}

// grants reports whether r grants the data action behind a.
func (r *role) grants(publish bool) bool {
	if publish {
		return r.publish
	}
	return r.subscribe
}

func newRole(name, id string, builtin bool, where string, perms []permission) *role {
	r := &role{name: name, id: id, builtin: builtin, where: where}
	for _, p := range perms {
		r.publish = r.publish || p.allows(ActionPublish)
		r.subscribe = r.subscribe || p.allows(ActionSubscribe)
	}
	return r
}

func (p permission) allows(action string) bool {
	action = strings.ToLower(action)
	match := func(patterns []string) bool {
		for _, pat := range patterns {
			if globMatch(pat, action) {
				return true
			}
		}
		return false
	}
	return match(p.dataActions) && !match(p.notDataActions)
}

// builtinRoles returns the built-in role definitions.
func builtinRoles() []*role {
	return []*role{
		newRole(RolePublisher, RolePublisherID, true, "built-in",
			[]permission{{dataActions: []string{strings.ToLower(ActionPublish)}}}),
		newRole(RoleSubscriber, RoleSubscriberID, true, "built-in",
			[]permission{{dataActions: []string{strings.ToLower(ActionSubscribe)}}}),
	}
}

// checkActionPattern validates a dataActions or notDataActions entry: a
// non-empty action name where '*' matches any run of characters, including
// '/' (Azure: "Microsoft.EventGrid/*" covers every Event Grid data action).
func checkActionPattern(p string) error {
	switch {
	case p == "":
		return errors.New("empty action")
	case strings.ContainsAny(p, " \t\r\n"):
		return fmt.Errorf("action %q contains white space", p)
	}
	return nil
}

// globMatch matches a lower-case pattern with '*' wildcards against a
// lower-case name, linear-time (one backtracking point).
func globMatch(pattern, name string) bool {
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			p, mark = star+1, mark+1
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// parseRoleID returns the lower-case GUID of a role definition id given as
// a GUID or as a full id ending in
// /providers/Microsoft.Authorization/roleDefinitions/{guid}.
func parseRoleID(s string) (string, error) {
	if authz.IsGUID(s) {
		return strings.ToLower(s), nil
	}
	seg := strings.Split(s, "/")
	n := len(seg)
	if n >= 4 && strings.EqualFold(seg[n-2], "roleDefinitions") &&
		strings.EqualFold(seg[n-3], "Microsoft.Authorization") &&
		strings.EqualFold(seg[n-4], "providers") && authz.IsGUID(seg[n-1]) {
		return strings.ToLower(seg[n-1]), nil
	}
	return "", fmt.Errorf("%q is neither a GUID nor …/providers/Microsoft.Authorization/roleDefinitions/{guid}", s)
}
