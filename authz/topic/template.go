package topic

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Variable names of SPEC 3.1. Names are case-sensitive, as in Event Grid.
const (
	// VarAuthenticationName is the principal's authentication name.
	VarAuthenticationName = "client.authenticationName"
	// VarClientID is the MQTT client identifier the client chose.
	VarClientID = "client.clientId"
	// VarAttributesPrefix introduces a client attribute:
	// ${client.attributes.<key>}.
	VarAttributesPrefix = "client.attributes."
)

// Limits of template resolution.
const (
	// MaxResolved bounds the filters one template resolves to. A template
	// referring to multi-valued attributes resolves to one filter per
	// combination of values; more than MaxResolved combinations resolve to
	// nothing rather than to a partial (arbitrary) subset.
	MaxResolved = 16
	// MaxAttributeKey bounds the length of an attribute key in a template.
	MaxAttributeKey = 256
)

// Resolution failures, wrapped in a *ResolveError naming the variable.
var (
	// ErrValueMissing: the variable has no value (attribute absent or with
	// no values).
	ErrValueMissing = errors.New("value missing")
	// ErrValueEmpty: the value is the empty string.
	ErrValueEmpty = errors.New("value empty")
	// ErrValueInvalid: the value contains '/', '+', '#' or U+0000, or is not
	// UTF-8; substituting it would change the shape of the filter.
	ErrValueInvalid = errors.New("value contains '/', '+', '#', U+0000 or invalid UTF-8")
	// ErrTooManyValues: multi-valued attributes give more than MaxResolved
	// combinations.
	ErrTooManyValues = errors.New("more than 16 value combinations")
	// ErrResolvedTooLong: the resolved filter is longer than MaxLength.
	ErrResolvedTooLong = errors.New("resolved filter longer than 65535 bytes")
	// ErrResolvedReserved: the resolved filter starts with '$' (reserved,
	// SPEC 3.1), which a variable at the start of a template could produce.
	ErrResolvedReserved = errors.New("resolved filter starts with '$'")
)

// ResolveError says why a template resolved to nothing.
type ResolveError struct {
	// Variable is the variable at fault, as written in the template
	// (${client.attributes.site}); empty for errors of the whole filter.
	Variable string
	// Err is one of the Err* resolution sentinels.
	Err error
}

// Error implements error.
func (e *ResolveError) Error() string {
	if e.Variable == "" {
		return e.Err.Error()
	}
	return e.Variable + ": " + e.Err.Error()
}

// Unwrap returns the sentinel.
func (e *ResolveError) Unwrap() error { return e.Err }

// Vars are the values of the template variables for one connection.
type Vars struct {
	// AuthenticationName is ${client.authenticationName}.
	AuthenticationName string
	// ClientID is ${client.clientId}: the client id the client chose.
	ClientID string
	// Attributes are ${client.attributes.<key>}; a scalar claim is a
	// one-element slice (authz.Identity.Attributes).
	Attributes map[string][]string
}

// varKind identifies what a template segment stands for.
type varKind uint8

const (
	literal varKind = iota
	authName
	clientID
	attribute
)

// segment is a piece of a template: literal text (which may contain '/') or
// a variable (text is the attribute key for attribute).
type segment struct {
	kind varKind
	text string
}

// Template is a parsed topic template (SPEC 3.1): an MQTT topic filter in
// which ${...} variables stand for the whole or a part of one level. The
// zero Template resolves to nothing. Templates are immutable values, safe
// to copy and to share between goroutines.
type Template struct {
	src    string
	segs   []segment
	hasVar bool
}

// ParseTemplate parses a topic template. Rules, each with its own error:
//   - a valid topic filter once variables are set aside: 1 to MaxLength bytes
//     of UTF-8, no U+0000, '+' and '#' only as whole levels, '#' last;
//   - not starting with a literal '$' (reserved, SPEC 3.1); a template may
//     start with a variable, whose value must then not start with '$';
//   - variables are ${client.authenticationName}, ${client.clientId} and
//     ${client.attributes.<key>}, where key is 1 to 256 ASCII letters,
//     digits, '_', '-' or '.' (claim names such as "site" or "x-ms.region");
//   - a variable is terminated by '}' within its level (it never spans
//     levels), and is never in the same level as '+' or '#'.
//
// A '$' not followed by '{' is a literal character (after the first byte).
func ParseTemplate(s string) (Template, error) {
	t, err := parseTemplate(s)
	if err != nil {
		return Template{}, fmt.Errorf("template %s: %w", quote(s), err)
	}
	return t, nil
}

func parseTemplate(s string) (Template, error) {
	switch err := validateString(s); {
	case err != nil:
		return Template{}, err
	case s[0] == '$' && !strings.HasPrefix(s, "${"):
		return Template{}, errors.New("templates starting with '$' are reserved")
	}
	t := Template{src: s}
	litStart, levelStart, levelVar := 0, 0, false
	endLevel := func(end int) error {
		level := s[levelStart:end]
		if !strings.ContainsAny(level, "+#") || level == "+" {
			return nil
		}
		switch {
		case level == "#" && end != len(s):
			return fmt.Errorf("'#' at byte %d must be the last level", levelStart)
		case level == "#":
			return nil
		case levelVar:
			return fmt.Errorf("level %s mixes a variable with '+' or '#'", quote(level))
		default:
			return fmt.Errorf("level %s: '+' and '#' must occupy a whole level", quote(level))
		}
	}
	for i := 0; i < len(s); {
		switch {
		case s[i] == '/':
			if err := endLevel(i); err != nil {
				return Template{}, err
			}
			levelStart, levelVar = i+1, false
			i++
		case strings.HasPrefix(s[i:], "${"):
			body := s[i+2:]
			end := strings.IndexByte(body, '}')
			if slash := strings.IndexByte(body, '/'); end < 0 || (slash >= 0 && slash < end) {
				return Template{}, fmt.Errorf("unterminated variable at byte %d: '${' needs a '}' in the same level", i)
			}
			seg, err := parseVar(body[:end])
			if err != nil {
				return Template{}, err
			}
			if litStart < i {
				t.segs = append(t.segs, segment{kind: literal, text: s[litStart:i]})
			}
			t.segs = append(t.segs, seg)
			t.hasVar, levelVar = true, true
			i += 2 + end + 1
			litStart = i
		default:
			i++
		}
	}
	if err := endLevel(len(s)); err != nil {
		return Template{}, err
	}
	if litStart < len(s) {
		t.segs = append(t.segs, segment{kind: literal, text: s[litStart:]})
	}
	return t, nil
}

// parseVar parses the name between ${ and }.
func parseVar(name string) (segment, error) {
	switch name {
	case VarAuthenticationName:
		return segment{kind: authName}, nil
	case VarClientID:
		return segment{kind: clientID}, nil
	}
	key, ok := strings.CutPrefix(name, VarAttributesPrefix)
	if !ok {
		return segment{}, fmt.Errorf("unknown variable ${%s}: want ${%s}, ${%s} or ${%s<key>}",
			truncate(name), VarAuthenticationName, VarClientID, VarAttributesPrefix)
	}
	if key == "" || len(key) > MaxAttributeKey {
		return segment{}, fmt.Errorf("attribute key of ${%s} must be 1 to %d characters", truncate(name), MaxAttributeKey)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return segment{}, fmt.Errorf("attribute key %s may hold only letters, digits, '_', '-' and '.'", quote(key))
		}
	}
	return segment{kind: attribute, text: key}, nil
}

// String returns the template as written; parsing it again gives an equal
// Template.
func (t Template) String() string { return t.src }

// HasVariables reports whether the template refers to any variable.
func (t Template) HasVariables() bool { return t.hasVar }

// UsesClientID reports whether the template refers to ${client.clientId}.
func (t Template) UsesClientID() bool {
	for _, sg := range t.segs {
		if sg.kind == clientID {
			return true
		}
	}
	return false
}

// AttributeKeys appends to dst the keys of the ${client.attributes.<key>}
// variables of the template, in template order, possibly repeated.
func (t Template) AttributeKeys(dst []string) []string {
	for _, sg := range t.segs {
		if sg.kind == attribute {
			dst = append(dst, sg.text)
		}
	}
	return dst
}

// Resolve returns the filter the template stands for with the values of v,
// and ok false when it resolves to nothing or to several filters (a
// multi-valued attribute; see ResolveAll). A template without variables
// resolves to itself without allocating.
func (t Template) Resolve(v Vars) (filter string, ok bool) {
	if t.src == "" {
		return "", false
	}
	if !t.hasVar {
		return t.src, true
	}
	fs, err := t.ResolveAll(v)
	if err != nil || len(fs) != 1 {
		return "", false
	}
	return fs[0], true
}

// ResolveAll returns the filters the template stands for with the values of
// v, in a deterministic order and without duplicates: one per combination
// of the values of the multi-valued attributes it refers to (a scalar is one
// value), at most MaxResolved. When any value is missing, empty or invalid,
// when there are too many combinations or a resolved filter would be too
// long or start with '$', it returns a *ResolveError and no filter: the
// template matches nothing, it is never widened (SPEC 3.1). Every returned
// filter is valid and has as many levels as the template.
func (t Template) ResolveAll(v Vars) ([]string, error) {
	if t.src == "" {
		return nil, &ResolveError{Err: ErrValueMissing}
	}
	if !t.hasVar {
		return []string{t.src}, nil
	}
	// Each distinct variable takes one value per combination, the same in
	// every place it occurs.
	type choice struct {
		seg    segment
		values []string
	}
	var choices []choice
	combos := 1
	for _, sg := range t.segs {
		if sg.kind == literal || slices.ContainsFunc(choices, func(c choice) bool { return c.seg == sg }) {
			continue
		}
		var values []string
		switch sg.kind {
		case authName:
			values = []string{v.AuthenticationName}
		case clientID:
			values = []string{v.ClientID}
		case attribute:
			values = v.Attributes[sg.text]
		}
		name := sg.String()
		if len(values) == 0 {
			return nil, &ResolveError{Variable: name, Err: ErrValueMissing}
		}
		if len(values) > MaxResolved || combos*len(values) > MaxResolved {
			return nil, &ResolveError{Variable: name, Err: ErrTooManyValues}
		}
		for _, val := range values {
			if err := checkValue(val); err != nil {
				return nil, &ResolveError{Variable: name, Err: err}
			}
		}
		combos *= len(values)
		choices = append(choices, choice{seg: sg, values: values})
	}
	out := make([]string, 0, combos)
	idx := make([]int, len(choices))
	var b strings.Builder
	for range combos {
		b.Reset()
		for _, sg := range t.segs {
			if sg.kind == literal {
				b.WriteString(sg.text)
				continue
			}
			for ci, c := range choices {
				if c.seg == sg {
					b.WriteString(c.values[idx[ci]])
					break
				}
			}
			if b.Len() > MaxLength {
				break // checked below; do not build a huge string
			}
		}
		if b.Len() > MaxLength {
			return nil, &ResolveError{Err: ErrResolvedTooLong}
		}
		f := b.String()
		if f[0] == '$' {
			return nil, &ResolveError{Err: ErrResolvedReserved}
		}
		if err := ValidateFilter(f); err != nil {
			// Unreachable after checkValue; kept so that a bug here fails
			// closed.
			return nil, &ResolveError{Err: err}
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
		// Next combination, last choice varying fastest.
		for ci := len(idx) - 1; ci >= 0; ci-- {
			idx[ci]++
			if idx[ci] < len(choices[ci].values) {
				break
			}
			idx[ci] = 0
		}
	}
	return out, nil
}

// Widest returns the filter that covers every resolution of the template:
// each level holding a variable becomes '+'. The policy uses it for a deny
// assignment whose template resolves to nothing, so that a missing or
// malicious value never narrows a deny (fail closed).
func (t Template) Widest() string {
	if !t.hasVar {
		return t.src
	}
	levels := strings.Split(t.src, "/")
	for i, l := range levels {
		if strings.Contains(l, "${") {
			levels[i] = "+"
		}
	}
	return strings.Join(levels, "/")
}

// String returns the variable as written in a template.
func (s segment) String() string {
	switch s.kind {
	case authName:
		return "${" + VarAuthenticationName + "}"
	case clientID:
		return "${" + VarClientID + "}"
	case attribute:
		return "${" + VarAttributesPrefix + s.text + "}"
	}
	return s.text
}

// checkValue rejects values that would change the shape of the filter.
func checkValue(v string) error {
	switch {
	case v == "":
		return ErrValueEmpty
	case strings.ContainsAny(v, "/+#\x00") || !utf8.ValidString(v):
		return ErrValueInvalid
	}
	return nil
}

// quote quotes s for an error message, shortening very long input.
func quote(s string) string { return fmt.Sprintf("%q", truncate(s)) }

// truncate shortens s to a length fit for an error message.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
