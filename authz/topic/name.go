package topic

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// MaxLength is the largest topic name or filter in bytes: MQTT encodes
// strings with a two-byte length [MQTT-1.5.4-1], [MQTT-4.7.3-3].
const MaxLength = 65535

// Validation errors. They are sentinels, not wrapped, so that validating a
// topic on the per-packet path does not allocate; callers add context.
var (
	// ErrEmpty: topic names and filters are at least one character long
	// [MQTT-4.7.3-1].
	ErrEmpty = errors.New("empty topic")
	// ErrTooLong: longer than MaxLength bytes.
	ErrTooLong = errors.New("topic longer than 65535 bytes")
	// ErrInvalidUTF8: not well-formed UTF-8 [MQTT-1.5.4-1].
	ErrInvalidUTF8 = errors.New("topic is not valid UTF-8")
	// ErrNUL: contains U+0000 [MQTT-1.5.4-2].
	ErrNUL = errors.New("topic contains U+0000")
	// ErrWildcardInName: a topic name (PUBLISH) contains '+' or '#'
	// [MQTT-3.3.2-2].
	ErrWildcardInName = errors.New("topic name contains a wildcard")
	// ErrWildcardPlacement: '+' or '#' does not occupy a whole level, or '#'
	// is not the last level [MQTT-4.7.1-1], [MQTT-4.7.1-2].
	ErrWildcardPlacement = errors.New("wildcard does not occupy a whole level or '#' is not last")
)

// ValidateName reports whether name is a valid PUBLISH topic name: 1 to
// MaxLength bytes of UTF-8 without U+0000 and without wildcards. It does not
// allocate.
func ValidateName(name string) error {
	if err := validateString(name); err != nil {
		return err
	}
	if strings.ContainsAny(name, "+#") {
		return ErrWildcardInName
	}
	return nil
}

// ValidateFilter reports whether filter is a valid topic filter: the string
// rules of ValidateName, with '+' and '#' allowed only as whole levels and
// '#' only as the last level. A shared subscription ($share/...) is a valid
// filter here; SplitShared checks its parts. It does not allocate.
func ValidateFilter(filter string) error {
	if err := validateString(filter); err != nil {
		return err
	}
	rest := filter
	for {
		level, tail, more := strings.Cut(rest, "/")
		if len(level) > 1 && strings.ContainsAny(level, "+#") {
			return ErrWildcardPlacement
		}
		if level == "#" && more {
			return ErrWildcardPlacement
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

// validateString checks the rules shared by names and filters.
func validateString(s string) error {
	switch {
	case s == "":
		return ErrEmpty
	case len(s) > MaxLength:
		return ErrTooLong
	case strings.IndexByte(s, 0) >= 0:
		return ErrNUL
	case !utf8.ValidString(s):
		return ErrInvalidUTF8
	}
	return nil
}
