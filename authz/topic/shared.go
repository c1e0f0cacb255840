package topic

import (
	"errors"
	"strings"
)

// sharePrefix introduces a shared subscription [MQTT-4.8.2]; it is
// case-sensitive like every topic string.
const sharePrefix = "$share/"

// Shared subscription errors (sentinels: SplitShared does not allocate).
var (
	// ErrShareName: the share name is empty or contains '+', '#' or is not
	// followed by '/' and a filter [MQTT-4.8.2-1], [MQTT-4.8.2-2].
	ErrShareName = errors.New("shared subscription without a valid share name and filter")
)

// SplitShared splits a filter of the form $share/<group>/<filter>. For any
// other filter it returns shared false, the filter unchanged as inner and no
// error. For a shared one it returns the share name and the inner filter,
// which must itself be a valid filter: the policy authorizes a shared
// subscription on its inner filter (SPEC 3.1). It does not allocate.
func SplitShared(filter string) (group, inner string, shared bool, err error) {
	rest, ok := strings.CutPrefix(filter, sharePrefix)
	if !ok {
		return "", filter, false, nil
	}
	group, inner, ok = strings.Cut(rest, "/")
	if !ok || group == "" || strings.ContainsAny(group, "+#") {
		return "", "", true, ErrShareName
	}
	if err := ValidateFilter(inner); err != nil {
		return "", "", true, err
	}
	return group, inner, true, nil
}
