package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/topic"
)

// Snapshot is a loaded, validated policy. It is immutable: every method is
// safe for concurrent use, and a Store replaces a Snapshot rather than
// changing it (SPEC 3.6).
type Snapshot struct {
	namespace string
	ns        scope
	files     []string
	spaces    []topicSpace
	// roles counts custom role definitions, for Summary.
	roles       int
	assignments []assignment
	denies      []assignment
	// byPrincipal and denyByPrincipal index assignments by principal key
	// (principalKey), each list in file order, so that compiling the grants
	// of a connection costs only the principal's own assignments. The maps
	// are only looked up, never ranged over.
	byPrincipal     map[string][]int32
	denyByPrincipal map[string][]int32
	// dropped says, by principal key, why az export entries naming it
	// were left out at load (a condition, an undefined role), for can-i.
	dropped  map[string][]string
	warnings []string

	// What the templates refer to besides the authentication name, so
	// that connections whose grants cannot differ share one compiled copy
	// (grantsCache).
	usesClientID bool
	attrKeys     []string // sorted, unique
	grants       grantsCache
}

// topicSpace is a validated topic space.
type topicSpace struct {
	name      string
	templates []topic.Template
	where     string // "file: entry", for messages
}

// assignment is a validated role or deny assignment.
type assignment struct {
	file, entry                string
	principalID, principalType string
	role                       *role
	scope                      scope
	// spaces are the indexes of the topic spaces of the configured
	// namespace that the scope contains, in file order; nil when it
	// contains none.
	spaces []int32
	deny   bool
	// outside says why spaces is empty, for Explain.
	outside string
}

// Namespace returns the resource id of the namespace the policy is for.
func (s *Snapshot) Namespace() string { return s.namespace }

// Warnings returns what is valid but probably not intended: a policy that
// grants nothing, assignments outside the namespace, az export entries that
// were ignored. Store logs them after each load.
func (s *Snapshot) Warnings() []string { return s.warnings }

// Summary returns a one-line description for check-config and logs.
func (s *Snapshot) Summary() string {
	return fmt.Sprintf("%d topic spaces, %d custom roles, %d role assignments, %d deny assignments from %d files, %d warnings",
		len(s.spaces), s.roles, len(s.assignments), len(s.denies), len(s.files), len(s.warnings))
}

// TopicSpaces returns the names of the topic spaces in file order.
func (s *Snapshot) TopicSpaces() []string {
	out := make([]string, len(s.spaces))
	for i, sp := range s.spaces {
		out[i] = sp.name
	}
	return out
}

// principalKey normalises a principal id for the index: object ids (GUIDs)
// are compared case-insensitively as in Azure; anything else (a generic
// issuer's subject, approle:<value>) exactly, so that two principals that
// differ only in case never share grants.
func principalKey(id string) string {
	if authz.IsGUID(id) {
		return strings.ToLower(id)
	}
	return id
}

// appRolePrefix makes an app role a principal (SPEC 2.1, 3.3).
const appRolePrefix = "approle:"

// principal is one identity an assignment may name.
type principal struct {
	key, display string
}

// looksLikeAppRole reports whether a name or group is spelled like an app
// role principal, in any case: it is never taken for one (principals).
func looksLikeAppRole(s string) bool {
	return len(s) >= len(appRolePrefix) && strings.EqualFold(s[:len(appRolePrefix)], appRolePrefix)
}

// overageGroups is the principal key of a token with a groups overage
// (principals): it holds every deny assignment to a group (principalType
// Group or ForeignGroup), and no grant. No principal id can equal it: the
// loader refuses control characters in principal ids.
const overageGroups = "\x00groups overage"

// principals lists the principals of id in a fixed order: the
// authentication name, its groups (none under a groups overage, SPEC 2.1,
// which instead makes every deny assignment to a group apply) and its app
// roles. An authentication name or group that starts with "approle:" is
// not considered: a generic issuer's subject or a groups claim must not
// take an app role's grants.
func principals(id *authz.Identity) []principal {
	if id == nil {
		return nil
	}
	out := make([]principal, 0, 1+len(id.Groups)+len(id.AppRoles))
	if id.AuthenticationName != "" && !looksLikeAppRole(id.AuthenticationName) {
		out = append(out, principal{principalKey(id.AuthenticationName), id.AuthenticationName})
	}
	if id.GroupsOverage {
		out = append(out, principal{overageGroups, "every group with a deny assignment (groups overage)"})
	} else {
		for _, g := range id.Groups {
			if g != "" && !looksLikeAppRole(g) {
				out = append(out, principal{principalKey(g), "group " + g})
			}
		}
	}
	for _, r := range id.AppRoles {
		if r != "" {
			out = append(out, principal{appRolePrefix + r, appRolePrefix + r})
		}
	}
	return out
}

// noteVariables records which variables the templates use.
func (s *Snapshot) noteVariables() {
	for _, sp := range s.spaces {
		for _, t := range sp.templates {
			s.usesClientID = s.usesClientID || t.UsesClientID()
			s.attrKeys = t.AttributeKeys(s.attrKeys)
		}
	}
	slices.Sort(s.attrKeys)
	s.attrKeys = slices.Compact(s.attrKeys)
}

// varsOf returns the template variables of a connection.
func varsOf(id *authz.Identity, clientID string) topic.Vars {
	v := topic.Vars{ClientID: clientID}
	if id != nil {
		v.AuthenticationName, v.Attributes = id.AuthenticationName, id.Attributes
	}
	return v
}
