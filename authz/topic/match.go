package topic

import "strings"

// The functions of this file walk two strings level by level with index
// arithmetic only, so that the per-packet checks of the proxy do not
// allocate (SPEC 3.2, 3.4). They assume their arguments are valid (see
// ValidateName and ValidateFilter); on invalid input they return some
// boolean without panicking, and callers must not rely on it.

// nextLevel returns the level of s starting at byte i, and the index where
// the next level starts, or -1 when this is the last level.
func nextLevel(s string, i int) (level string, next int) {
	if j := strings.IndexByte(s[i:], '/'); j >= 0 {
		return s[i : i+j], i + j + 1
	}
	return s[i:], -1
}

// isWildcard reports whether the first level of a filter is a wildcard.
func startsWithWildcard(filter string) bool {
	return filter != "" && (filter[0] == '+' || filter[0] == '#') &&
		(len(filter) == 1 || filter[1] == '/')
}

// Match reports whether the topic name matches the filter with the standard
// MQTT rules: '+' matches exactly one level (possibly empty), '#' matches
// the parent level and any number of levels below it [MQTT-4.7.1-2], and a
// filter starting with a wildcard does not match a topic starting with '$'
// [MQTT-4.7.2-1]. It does not allocate.
func Match(filter, topic string) bool {
	if filter == "" || topic == "" {
		return false
	}
	if topic[0] == '$' && startsWithWildcard(filter) {
		return false
	}
	fi, ti := 0, 0
	for {
		fl, fn := nextLevel(filter, fi)
		if fl == "#" {
			return true
		}
		tl, tn := nextLevel(topic, ti)
		if fl != "+" && fl != tl {
			return false
		}
		switch {
		case fn < 0 && tn < 0:
			return true
		case fn < 0:
			return false
		case tn < 0:
			// "a/#" matches "a": the rest of the filter must be exactly "#".
			return filter[fn:] == "#"
		}
		fi, ti = fn, tn
	}
}

// Subset reports whether every topic that filter f can match is also matched
// by filter t (f ⊆ t), the SPEC 3.2 rule for authorizing a SUBSCRIBE against
// one template. Level by level: a literal in f needs an equal literal, '+'
// or '#' in t; '+' in f needs '+' or '#'; '#' in f needs '#' at the same or
// an earlier level; and a t that starts with a wildcard does not cover an f
// starting with '$' [MQTT-4.7.2-1].
//
// The answer is exact, not just the level rule: "#" ⊆ "+/#" is true, because
// a topic is never empty, so "+/#" matches every topic not starting with '$'
// as "#" does (likewise "/#" ⊆ "/+/#"). It does not allocate.
func Subset(f, t string) bool {
	if f == "" || t == "" {
		return false
	}
	if f[0] == '$' && startsWithWildcard(t) {
		return false
	}
	fi, ti := 0, 0
	for {
		fl, fn := nextLevel(f, fi)
		tl, tn := nextLevel(t, ti)
		switch {
		case tl == "#":
			return true
		case fl == "#":
			// f also matches its parent topic, which only '#' covers —
			// unless that parent is the empty topic, which does not exist
			// ("#", "/#"): then "+/#" covers f too.
			return parentless(f, fi) && t[ti:] == "+/#"
		case tl == "+":
			// covers a literal or '+'.
		case fl != tl || fl == "+":
			return false
		}
		switch {
		case fn < 0 && tn < 0:
			return true
		case fn < 0:
			// f's topics end here; t matches them only through a final "#".
			return t[tn:] == "#"
		case tn < 0:
			// f has more levels (even a final '#' matches deeper topics).
			return false
		}
		fi, ti = fn, tn
	}
}

// parentless reports whether the levels of f before byte i form the empty
// topic (i is the start of a level).
func parentless(f string, i int) bool {
	return i == 0 || (i == 1 && f[0] == '/')
}

// Overlap reports whether some topic is matched by both filters a and b.
// The policy uses it for deny assignments on SUBSCRIBE: a filter that could
// receive any topic a deny assignment covers is denied as a whole (deny
// wins, SPEC 3.3). It does not allocate.
func Overlap(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	aw, bw := startsWithWildcard(a), startsWithWildcard(b)
	if (a[0] == '$' && bw) || (b[0] == '$' && aw) {
		return false
	}
	ai, bi := 0, 0
	for {
		al, an := nextLevel(a, ai)
		bl, bn := nextLevel(b, bi)
		if al == "#" || bl == "#" {
			// The other filter's remaining levels can always be instantiated
			// below the common prefix, and '#' matches them all.
			return true
		}
		if al != "+" && bl != "+" && al != bl {
			return false
		}
		if an < 0 || bn < 0 {
			// The common topic ends here, unless it would be the empty
			// topic (one empty level), which does not exist.
			if ai == 0 && (al == "" || bl == "") {
				return false
			}
			switch {
			case an < 0 && bn < 0:
				return true
			case an < 0:
				return b[bn:] == "#"
			default:
				return a[an:] == "#"
			}
		}
		ai, bi = an, bn
	}
}
