package policy

import (
	"errors"
	"fmt"
	"strings"
)

// scopeKind is the level of an Azure scope (SPEC 3.3).
type scopeKind uint8

const (
	// scopeRoot is "/": the root scope contains everything.
	scopeRoot scopeKind = iota + 1
	scopeSubscription
	scopeResourceGroup
	scopeNamespace
	scopeTopicSpace
	// scopeOther is any other resource or a management group: it contains
	// no topic space we can know of (a management group's subscriptions
	// are not in the files), so it grants nothing here.
	scopeOther
)

// scope is a parsed Azure scope. Parts keep their spelling; comparisons
// are case-insensitive, as in Azure (SPEC 3.3).
type scope struct {
	raw                string
	kind               scopeKind
	sub, rg, ns, space string
}

// parseScope parses an Azure scope. Recognised levels nest
// /subscriptions/{s} ⊃ /resourceGroups/{rg} ⊃
// /providers/Microsoft.EventGrid/namespaces/{ns} ⊃ /topicSpaces/{ts};
// other resources and management groups parse as scopeOther. A trailing '/'
// is ignored. Partial paths (".../providers") and empty segments are errors.
func parseScope(s string) (scope, error) {
	if !strings.HasPrefix(s, "/") {
		return scope{}, errors.New("must start with '/'")
	}
	sc := scope{raw: s}
	trimmed := strings.TrimSuffix(s, "/")
	if trimmed == "" {
		sc.kind = scopeRoot
		return sc, nil
	}
	seg := strings.Split(trimmed[1:], "/")
	for _, p := range seg {
		if p == "" {
			return scope{}, errors.New("empty path segment")
		}
		if strings.TrimSpace(p) != p {
			return scope{}, fmt.Errorf("segment %q has surrounding white space", p)
		}
	}
	if len(seg)%2 != 0 {
		return scope{}, errors.New("not a sequence of type/name pairs")
	}
	is := func(i int, name string) bool { return strings.EqualFold(seg[i], name) }
	switch {
	case is(0, "providers"):
		// /providers/Microsoft.Management/managementGroups/{mg} and other
		// tenant-level scopes.
		sc.kind = scopeOther
		return sc, nil
	case !is(0, "subscriptions"):
		return scope{}, errors.New("must start with /subscriptions/{id} (or be / or a management group)")
	}
	sc.sub, sc.kind = seg[1], scopeSubscription
	if len(seg) == 2 {
		return sc, nil
	}
	if !is(2, "resourceGroups") {
		sc.kind = scopeOther
		return sc, nil
	}
	sc.rg, sc.kind = seg[3], scopeResourceGroup
	if len(seg) == 4 {
		return sc, nil
	}
	if len(seg) < 8 || !is(4, "providers") {
		sc.kind = scopeOther
		return sc, nil
	}
	if !is(5, "Microsoft.EventGrid") || !is(6, "namespaces") {
		sc.kind = scopeOther
		return sc, nil
	}
	sc.ns, sc.kind = seg[7], scopeNamespace
	if len(seg) == 8 {
		return sc, nil
	}
	if len(seg) == 10 && is(8, "topicSpaces") {
		sc.space, sc.kind = seg[9], scopeTopicSpace
		return sc, nil
	}
	sc.kind = scopeOther // e.g. …/namespaces/{ns}/clients/{c}
	return sc, nil
}

// isManagementGroup reports whether sc is a management group's scope
// (/providers/Microsoft.Management/managementGroups/{mg}).
func isManagementGroup(sc scope) bool {
	seg := strings.Split(strings.Trim(sc.raw, "/"), "/")
	return sc.kind == scopeOther && len(seg) == 4 && strings.EqualFold(seg[0], "providers") &&
		strings.EqualFold(seg[1], "Microsoft.Management") && strings.EqualFold(seg[2], "managementGroups")
}

// containsNamespace reports whether sc contains the whole namespace ns (a
// scopeNamespace).
func (sc scope) containsNamespace(ns scope) bool {
	switch sc.kind {
	case scopeRoot:
		return true
	case scopeSubscription:
		return strings.EqualFold(sc.sub, ns.sub)
	case scopeResourceGroup:
		return strings.EqualFold(sc.sub, ns.sub) && strings.EqualFold(sc.rg, ns.rg)
	case scopeNamespace:
		return sameNamespace(sc, ns)
	}
	return false
}

// inNamespace reports whether a topic-space scope lies in namespace ns.
func (sc scope) inNamespace(ns scope) bool {
	return sc.kind == scopeTopicSpace && sameNamespace(sc, ns)
}

func sameNamespace(a, b scope) bool {
	return strings.EqualFold(a.sub, b.sub) && strings.EqualFold(a.rg, b.rg) && strings.EqualFold(a.ns, b.ns)
}
