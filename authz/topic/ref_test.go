package topic_test

import (
	"slices"
	"strings"
)

// This file holds the brute-force reference the fast matchers are checked
// against (the netip differential pattern, STYLE 42): plain recursion over
// strings.Split, no index arithmetic.

// refMatch is MQTT matching by recursion over levels.
func refMatch(filter, topic string) bool {
	if filter == "" || topic == "" {
		return false
	}
	fl, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	if strings.HasPrefix(topic, "$") && (fl[0] == "+" || fl[0] == "#") {
		return false // [MQTT-4.7.2-1]
	}
	return refLevels(fl, tl)
}

func refLevels(f, t []string) bool {
	switch {
	case len(f) == 0:
		return len(t) == 0
	case f[0] == "#":
		return true
	case len(t) == 0:
		return false
	case f[0] != "+" && f[0] != t[0]:
		return false
	}
	return refLevels(f[1:], t[1:])
}

// universe returns every topic of up to depth levels over the literal levels
// of the given filters plus one fresh literal: enough to witness any
// difference between filters of fewer than depth levels (a topic level that
// is not a literal of either filter behaves like the fresh one).
func universe(depth int, filters ...string) []string {
	alpha := []string{}
	for _, f := range filters {
		for _, l := range strings.Split(f, "/") {
			if l != "+" && l != "#" && !slices.Contains(alpha, l) {
				alpha = append(alpha, l)
			}
		}
	}
	fresh := "z"
	for slices.Contains(alpha, fresh) {
		fresh += "z"
	}
	alpha = append(alpha, fresh)
	var out []string
	var walk func(prefix string, d int)
	walk = func(prefix string, d int) {
		if d > 0 && prefix != "" {
			out = append(out, prefix)
		}
		if d == depth {
			return
		}
		for _, a := range alpha {
			if d == 0 {
				walk(a, 1)
			} else {
				walk(prefix+"/"+a, d+1)
			}
		}
	}
	walk("", 0)
	return out
}

// levels counts the levels of a filter.
func levels(f string) int { return strings.Count(f, "/") + 1 }

// bruteSubset decides f ⊆ t by enumerating the universe.
func bruteSubset(f, t string) (subset bool, witness string) {
	for _, topic := range universe(max(levels(f), levels(t))+1, f, t) {
		if refMatch(f, topic) && !refMatch(t, topic) {
			return false, topic
		}
	}
	return true, ""
}

// bruteOverlap decides whether a and b match a common topic.
func bruteOverlap(a, b string) bool {
	for _, topic := range universe(max(levels(a), levels(b))+1, a, b) {
		if refMatch(a, topic) && refMatch(b, topic) {
			return true
		}
	}
	return false
}

// witness constructs a topic matched by f and not by t, or reports that
// there is none. Every topic f matches is f with its '+' levels set to some
// values and its '#' replaced by k ≥ 0 levels (k ≥ 1 at level 0). Setting a
// level to a fresh literal never helps t match (a literal of t differs from
// it, a wildcard of t matches anything), and beyond len(t)+1 levels more
// depth changes nothing, so trying each k up to that bound is exhaustive.
func witness(f, t string) (string, bool) {
	fl := strings.Split(f, "/")
	fresh := "z"
	for strings.Contains(f+"/"+t, fresh) {
		fresh += "z"
	}
	base := make([]string, 0, len(fl))
	hash := false
	for _, l := range fl {
		switch l {
		case "+":
			base = append(base, fresh)
		case "#":
			hash = true
		default:
			base = append(base, l)
		}
	}
	if !hash {
		topic := strings.Join(base, "/")
		return topic, !refMatch(t, topic)
	}
	for k := 0; k <= levels(t)+1; k++ {
		ls := slices.Clone(base)
		for range k {
			ls = append(ls, fresh)
		}
		topic := strings.Join(ls, "/")
		if topic == "" {
			continue // the empty topic does not exist
		}
		if !refMatch(t, topic) {
			return topic, true
		}
	}
	return "", false
}
