package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds one policy file. An az export of 10,000 role
// assignments is about 8 MiB.
const maxFileSize = 64 << 20

// Error is one problem of a policy file, located by file, entry and field
// (STYLE 20). Load joins all of them with errors.Join; the CLI prints the
// result as is.
type Error struct {
	// File is the path as configured.
	File string
	// Entry locates the entry: `topicSpaces[2] (name "telemetry")`, or
	// `[12] (role assignment "…")` in an az export; empty for the file.
	Entry string
	// Field is the field of the entry at fault (topicTemplates[1]), if any.
	Field string
	// Err is the problem.
	Err error
}

// Error implements error: "file: entry: field: problem".
func (e *Error) Error() string {
	var b strings.Builder
	for _, p := range []string{e.File, e.Entry, e.Field} {
		if p != "" {
			b.WriteString(p)
			b.WriteString(": ")
		}
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying problem.
func (e *Error) Unwrap() error { return e.Err }

// rawTopicSpace is a topic space as read from a native file or an az
// export, before validation.
type rawTopicSpace struct {
	name      string
	templates []string
	id        string // az exports: the resource id, naming its namespace
	entry     string // locator for messages
	az        bool
}

// rawRoleDefinition is a custom role definition before validation.
type rawRoleDefinition struct {
	name, id string
	perms    []permission // patterns as written
	entry    string
	az       bool
	// conditional counts the permissions left out for their ABAC
	// condition (az exports).
	conditional int
}

// rawAssignment is a role or deny assignment before validation.
type rawAssignment struct {
	principalID, principalType string
	roleID, roleName           string
	scope                      string
	// condition is an ABAC condition (az exports). The proxy cannot
	// evaluate conditions, so a conditional assignment grants nothing.
	condition string
	entry     string
	az        bool
}

// nativeFile is the native policy format of SPEC 7. Unknown keys are
// errors: a typo must not silently drop a grant or a deny.
type nativeFile struct {
	TopicSpaces     []nativeTopicSpace     `json:"topicSpaces" yaml:"topicSpaces"`
	RoleDefinitions []nativeRoleDefinition `json:"roleDefinitions" yaml:"roleDefinitions"`
	RoleAssignments []nativeAssignment     `json:"roleAssignments" yaml:"roleAssignments"`
	DenyAssignments []nativeAssignment     `json:"denyAssignments" yaml:"denyAssignments"`
}

type nativeTopicSpace struct {
	Name           string   `json:"name" yaml:"name"`
	Description    string   `json:"description" yaml:"description"`
	TopicTemplates []string `json:"topicTemplates" yaml:"topicTemplates"`
}

type nativeRoleDefinition struct {
	Name           string   `json:"name" yaml:"name"`
	ID             string   `json:"id" yaml:"id"`
	Description    string   `json:"description" yaml:"description"`
	DataActions    []string `json:"dataActions" yaml:"dataActions"`
	NotDataActions []string `json:"notDataActions" yaml:"notDataActions"`
}

type nativeAssignment struct {
	// Name and Description are optional labels.
	Name               string `json:"name" yaml:"name"`
	Description        string `json:"description" yaml:"description"`
	PrincipalID        string `json:"principalId" yaml:"principalId"`
	PrincipalType      string `json:"principalType" yaml:"principalType"`
	RoleDefinitionID   string `json:"roleDefinitionId" yaml:"roleDefinitionId"`
	RoleDefinitionName string `json:"roleDefinitionName" yaml:"roleDefinitionName"`
	Scope              string `json:"scope" yaml:"scope"`
}

// azAssignment is the part of an `az role assignment list` element the
// proxy reads; the other fields (canDelegate, createdOn, id, …) are ignored.
type azAssignment struct {
	Name               string  `json:"name"`
	PrincipalID        string  `json:"principalId"`
	PrincipalType      string  `json:"principalType"`
	RoleDefinitionID   string  `json:"roleDefinitionId"`
	RoleDefinitionName string  `json:"roleDefinitionName"`
	Scope              string  `json:"scope"`
	Condition          *string `json:"condition"`
}

// azTopicSpace is the part of an `az eventgrid namespace topic-space list`
// element the proxy reads.
type azTopicSpace struct {
	Name           string   `json:"name"`
	TopicTemplates []string `json:"topicTemplates"`
	ID             string   `json:"id"`
}

// azRoleDefinition is the part of an `az role definition list` element the
// proxy reads.
type azRoleDefinition struct {
	RoleName    string `json:"roleName"`
	Name        string `json:"name"` // the GUID
	Permissions []struct {
		DataActions    []string `json:"dataActions"`
		NotDataActions []string `json:"notDataActions"`
		Condition      *string  `json:"condition"`
	} `json:"permissions"`
}

// parsedFile is what one file contributes, in file order.
type parsedFile struct {
	name        string
	topicSpaces []rawTopicSpace
	roles       []rawRoleDefinition
	assignments []rawAssignment
	denies      []rawAssignment
}

// fileData is a file's name and content.
type fileData struct {
	name string
	data []byte
}

// readFile reads a policy file up to maxFileSize.
func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d MiB", maxFileSize>>20)
	}
	return data, nil
}

// parseFile decodes one file. The format is told by content, not by name:
// JSON when it starts with '{' or '[', YAML otherwise. A top-level
// sequence (JSON array or YAML list) is an az export (SPEC 7): elements with
// principalId are role assignments, with topicTemplates topic spaces, with
// roleName and permissions role definitions (az role definition list); unknown
// fields of these elements are ignored. A top-level mapping is the native
// format, whose unknown fields are errors.
func parseFile(fd fileData) (*parsedFile, []error) {
	data := bytes.TrimPrefix(fd.data, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimSpace(data)
	fail := func(err error) (*parsedFile, []error) {
		return nil, []error{&Error{File: fd.name, Err: err}}
	}
	if len(trimmed) == 0 {
		// A file caught half-written must not replace a good policy with
		// an empty one; "{}" is the way to say "nothing".
		return fail(errors.New("file is empty"))
	}
	pf := &parsedFile{name: fd.name}
	switch trimmed[0] {
	case '{':
		var nf nativeFile
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&nf); err != nil {
			return fail(jsonError(trimmed, err))
		}
		if _, err := dec.Token(); err != io.EOF {
			return fail(errors.New("unexpected data after the JSON object"))
		}
		pf.setNative(&nf)
		return pf, nil
	case '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(trimmed, &elems); err != nil {
			return fail(jsonError(trimmed, err))
		}
		return pf, pf.setExport(elems)
	}
	var probe any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&probe); err != nil && err != io.EOF {
		return fail(fmt.Errorf("parse YAML: %w", err))
	}
	var more any
	if err := dec.Decode(&more); err != io.EOF {
		return fail(errors.New("more than one YAML document"))
	}
	switch v := probe.(type) {
	case nil:
		return fail(errors.New("file is empty"))
	case []any:
		elems := make([]json.RawMessage, len(v))
		for i, e := range v {
			b, err := json.Marshal(e)
			if err != nil {
				return fail(fmt.Errorf("[%d]: %w", i, err))
			}
			elems[i] = b
		}
		return pf, pf.setExport(elems)
	case map[string]any, map[any]any:
		// Decode again, strictly: unknown keys are errors.
		var nf nativeFile
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&nf); err != nil {
			return fail(&parseError{msg: "parse YAML: " + yamlTypeNames.Replace(err.Error()), err: err})
		}
		pf.setNative(&nf)
		return pf, nil
	default:
		return fail(fmt.Errorf("top level is a %T, want a mapping (native policy) or a list (az export)", probe))
	}
}

// yamlTypeNames rewrites "field x not found in type policy.nativeFile".
var yamlTypeNames = strings.NewReplacer(
	"in type policy.nativeFile", "at the top level (known: topicSpaces, roleDefinitions, roleAssignments, denyAssignments)",
	"in type policy.nativeTopicSpace", "in a topic space (known: name, description, topicTemplates)",
	"in type policy.nativeRoleDefinition", "in a role definition (known: name, id, description, dataActions, notDataActions)",
	"in type policy.nativeAssignment", "in an assignment (known: name, description, principalId, principalType, roleDefinitionId, roleDefinitionName, scope)",
	"policy.nativeFile", "a policy",
	"policy.nativeTopicSpace", "a topic space",
	"policy.nativeRoleDefinition", "a role definition",
	"policy.nativeAssignment", "an assignment",
)

// setNative records the entries of a native file with their locations.
func (pf *parsedFile) setNative(nf *nativeFile) {
	for i, ts := range nf.TopicSpaces {
		pf.topicSpaces = append(pf.topicSpaces, rawTopicSpace{
			name: ts.Name, templates: ts.TopicTemplates,
			entry: entryName("topicSpaces", i, "name", ts.Name),
		})
	}
	for i, rd := range nf.RoleDefinitions {
		pf.roles = append(pf.roles, rawRoleDefinition{
			name: rd.Name, id: rd.ID,
			perms: []permission{{dataActions: rd.DataActions, notDataActions: rd.NotDataActions}},
			entry: entryName("roleDefinitions", i, "name", rd.Name),
		})
	}
	native := func(list string, as []nativeAssignment) []rawAssignment {
		out := make([]rawAssignment, 0, len(as))
		for i, a := range as {
			out = append(out, rawAssignment{
				principalID: a.PrincipalID, principalType: a.PrincipalType,
				roleID: a.RoleDefinitionID, roleName: a.RoleDefinitionName, scope: a.Scope,
				entry: entryName(list, i, "principal", a.PrincipalID),
			})
		}
		return out
	}
	pf.assignments = append(pf.assignments, native("roleAssignments", nf.RoleAssignments)...)
	pf.denies = append(pf.denies, native("denyAssignments", nf.DenyAssignments)...)
}

// setExport classifies and decodes the elements of an az export.
func (pf *parsedFile) setExport(elems []json.RawMessage) []error {
	var errs []error
	bad := func(entry string, err error) {
		errs = append(errs, &Error{File: pf.name, Entry: entry, Err: err})
	}
	for i, raw := range elems {
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(raw, &keys); err != nil {
			bad(fmt.Sprintf("[%d]", i), errors.New("element is not an object"))
			continue
		}
		_, isAssignment := keys["principalId"]
		_, isTopicSpace := keys["topicTemplates"]
		_, isRole := keys["permissions"]
		_, hasRoleName := keys["roleName"]
		isRole = isRole && hasRoleName
		switch {
		case isAssignment && !isTopicSpace && !isRole:
			var a azAssignment
			if err := json.Unmarshal(raw, &a); err != nil {
				bad(fmt.Sprintf("[%d]", i), jsonError(raw, err))
				continue
			}
			ra := rawAssignment{
				principalID: a.PrincipalID, principalType: a.PrincipalType,
				roleID: a.RoleDefinitionID, roleName: a.RoleDefinitionName, scope: a.Scope,
				entry: entryName("", i, "role assignment", a.Name), az: true,
			}
			if a.Condition != nil {
				ra.condition = *a.Condition
			}
			pf.assignments = append(pf.assignments, ra)
		case isTopicSpace && !isAssignment && !isRole:
			var ts azTopicSpace
			if err := json.Unmarshal(raw, &ts); err != nil {
				bad(fmt.Sprintf("[%d]", i), jsonError(raw, err))
				continue
			}
			pf.topicSpaces = append(pf.topicSpaces, rawTopicSpace{
				name: ts.Name, templates: ts.TopicTemplates, id: ts.ID,
				entry: entryName("", i, "topic space", ts.Name), az: true,
			})
		case isRole && !isAssignment && !isTopicSpace:
			var ar azRoleDefinition
			if err := json.Unmarshal(raw, &ar); err != nil {
				bad(fmt.Sprintf("[%d]", i), jsonError(raw, err))
				continue
			}
			rd := rawRoleDefinition{name: ar.RoleName, id: ar.Name, az: true,
				entry: entryName("", i, "role definition", ar.RoleName)}
			for _, p := range ar.Permissions {
				if p.Condition != nil && *p.Condition != "" {
					// An ABAC condition the proxy cannot evaluate: as
					// for a conditional assignment, it grants nothing.
					rd.conditional++
					continue
				}
				rd.perms = append(rd.perms, permission{dataActions: p.DataActions, notDataActions: p.NotDataActions})
			}
			pf.roles = append(pf.roles, rd)
		case isAssignment || isTopicSpace || isRole:
			bad(fmt.Sprintf("[%d]", i), errors.New("element mixes the fields of a role assignment (principalId), a topic space (topicTemplates) and a role definition (roleName, permissions)"))
		default:
			bad(fmt.Sprintf("[%d]", i), errors.New("element is not a role assignment (principalId), a topic space (topicTemplates) or a role definition (roleName, permissions)"))
		}
	}
	return errs
}

// entryName formats an entry locator: `list[i] (what "name")`.
func entryName(list string, i int, what, name string) string {
	loc := fmt.Sprintf("%s[%d]", list, i)
	if name == "" {
		return loc
	}
	return fmt.Sprintf("%s (%s %q)", loc, what, truncate(name))
}

// parseError is a decoding error whose message is written for the policy's
// author (positions, policy field names instead of Go types); it wraps the
// decoder's error.
type parseError struct {
	msg string
	err error
}

func (e *parseError) Error() string { return e.msg }
func (e *parseError) Unwrap() error { return e.err }

// jsonError rewrites a JSON decoding error with a line and column and
// without Go type names.
func jsonError(data []byte, err error) error {
	pos := func(off int64) string {
		off = min(max(off, 0), int64(len(data)))
		line := 1 + bytes.Count(data[:off], []byte("\n"))
		col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
		return fmt.Sprintf("line %d column %d", line, col)
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	msg := "parse JSON: " + err.Error()
	switch {
	case errors.As(err, &se):
		msg = fmt.Sprintf("parse JSON: %s: %v", pos(se.Offset), err)
	case errors.As(err, &te):
		msg = fmt.Sprintf("parse JSON: %s: field %s: got a JSON %s, want %s", pos(te.Offset), te.Field, te.Value, jsonKind(te.Type))
	default:
		// DisallowUnknownFields gives no position: point at the first
		// occurrence of the key.
		if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			msg = "parse JSON: unknown field " + field
			if i := bytes.Index(data, []byte(field)); i >= 0 {
				msg = fmt.Sprintf("parse JSON: %s: unknown field %s", pos(int64(i)), field)
			}
		}
	}
	return &parseError{msg: msg, err: err}
}

// jsonKind names a Go type as the JSON value it decodes.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonKind(t.Elem()), "a "), "an ") + "s"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Bool:
		return "a boolean"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a " + t.Kind().String()
}

// truncate shortens s for a message, at a rune boundary.
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
