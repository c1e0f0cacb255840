package policy

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"unicode"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/topic"
)

// Load reads, validates and merges the policy files of cfg into a Snapshot.
// Every problem is reported, each as an *Error naming the file, the entry
// and the field, joined with errors.Join; on any problem no Snapshot is
// returned (fail closed, STYLE 35).
//
// Rules beyond the file format (SPEC 3, 7):
//   - topic space names are unique across files (case-insensitively, as
//     Azure resource names), 1 to 128 letters, digits, '-', '_' or '.', and
//     hold 1 to cfg.MaxTemplatesPerTopicSpace valid templates;
//   - role assignments name a built-in or defined role, by name or id; a
//     native file that names an unknown role is an error, an az export entry
//     is ignored (an export lists Owner, Reader, … which grant no topic
//     space data action), as are its entries with ABAC conditions (not
//     evaluated, so they grant nothing) — both reported in one warning;
//   - scopes are Azure scopes; only those containing the configured
//     namespace or one of its topic spaces grant anything.
func Load(cfg Config) (*Snapshot, error) {
	snap, _, err := load(cfg)
	return snap, err
}

// fingerprint identifies the content of the policy files, so that the
// watcher reloads only when something changed.
type fingerprint [sha256.Size]byte

// load is Load, also returning the fingerprint of the bytes it read.
func load(cfg Config) (*Snapshot, fingerprint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fingerprint{}, err
	}
	files, fp, errs := readFiles(cfg.Files)
	if len(errs) > 0 {
		return nil, fp, errors.Join(errs...)
	}
	snap, err := build(cfg, files)
	return snap, fp, err
}

// readFiles reads every file, returning the fingerprint of what it read
// (including which files could not be read).
func readFiles(names []string) ([]fileData, fingerprint, []error) {
	h := sha256.New()
	var errs []error
	files := make([]fileData, 0, len(names))
	for _, name := range names {
		data, err := readFile(name)
		fmt.Fprintf(h, "%q %d\n", name, len(data))
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is already in Error.File
			}
			fmt.Fprintf(h, "error %v\n", err)
			errs = append(errs, &Error{File: name, Err: fmt.Errorf("read: %w", err)})
			continue
		}
		h.Write(data)
		files = append(files, fileData{name: name, data: data})
	}
	var fp fingerprint
	h.Sum(fp[:0])
	return files, fp, errs
}

// builder accumulates a Snapshot, its errors and its warnings.
type builder struct {
	cfg         Config
	snap        *Snapshot
	errs        []error
	spaceByName map[string]int32  // lower-case name
	spaceWhere  map[string]string // lower-case name → where first defined
	roleByID    map[string]*role  // lower-case GUID
	roleByName  map[string]*role  // lower-case name
	all         []int32           // see allSpaces
}

// build validates and merges parsed files.
func build(cfg Config, files []fileData) (*Snapshot, error) {
	ns, err := parseScope(cfg.Namespace)
	if err != nil || ns.kind != scopeNamespace {
		return nil, cfg.Validate()
	}
	b := &builder{
		cfg: cfg,
		snap: &Snapshot{
			namespace:       cfg.Namespace,
			ns:              ns,
			byPrincipal:     map[string][]int32{},
			denyByPrincipal: map[string][]int32{},
			dropped:         map[string][]string{},
		},
		spaceByName: map[string]int32{},
		spaceWhere:  map[string]string{},
		roleByID:    map[string]*role{},
		roleByName:  map[string]*role{},
	}
	parsed := make([]*parsedFile, 0, len(files))
	for _, fd := range files {
		b.snap.files = append(b.snap.files, fd.name)
		pf, errs := parseFile(fd)
		b.errs = append(b.errs, errs...)
		if pf != nil {
			parsed = append(parsed, pf)
		}
	}
	for _, r := range builtinRoles() {
		b.roleByID[r.id], b.roleByName[strings.ToLower(r.name)] = r, r
	}
	for _, pf := range parsed {
		b.addTopicSpaces(pf)
	}
	for _, pf := range parsed {
		b.addRoles(pf)
	}
	for _, pf := range parsed {
		b.addAssignments(pf)
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	b.warnNothingGranted()
	b.snap.noteVariables()
	return b.snap, nil
}

func (b *builder) fail(file, entry, field string, err error) {
	b.errs = append(b.errs, &Error{File: file, Entry: entry, Field: field, Err: err})
}

func (b *builder) warn(format string, args ...any) {
	b.snap.warnings = append(b.snap.warnings, fmt.Sprintf(format, args...))
}

// checkName validates a topic space name. Event Grid is stricter (3 to 50
// letters, digits and '-'); this accepts what can be put in a scope path
// unambiguously.
func checkName(name string) error {
	if name == "" || len(name) > 128 {
		return errors.New("must be 1 to 128 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%q may hold only letters, digits, '-', '_' and '.'", truncate(name))
		}
	}
	return nil
}

func (b *builder) addTopicSpaces(pf *parsedFile) {
	otherNS := 0
	for _, ts := range pf.topicSpaces {
		if ts.az && ts.id != "" {
			// An export of another namespace's topic spaces must not define
			// this one's.
			if sc, err := parseScope(ts.id); err == nil && sc.kind == scopeTopicSpace && !sc.inNamespace(b.snap.ns) {
				otherNS++
				continue
			}
		}
		ok := true
		bad := func(field string, err error) {
			b.fail(pf.name, ts.entry, field, err)
			ok = false
		}
		key := strings.ToLower(ts.name)
		where := pf.name + ": " + ts.entry
		if err := checkName(ts.name); err != nil {
			bad("name", err)
		} else if prev, dup := b.spaceWhere[key]; dup {
			bad("name", fmt.Errorf("duplicate topic space %q, first defined at %s", ts.name, prev))
		} else {
			// Registered even when the entry is invalid, so that a
			// duplicate of it is reported in the same run.
			b.spaceWhere[key] = where
		}
		switch max := b.cfg.maxTemplates(); {
		case len(ts.templates) == 0:
			bad("topicTemplates", errors.New("at least one topic template is required"))
		case len(ts.templates) > max:
			bad("topicTemplates", fmt.Errorf("%d templates, more than the limit of %d (policy.maxTemplatesPerTopicSpace)", len(ts.templates), max))
		}
		templates := make([]topic.Template, 0, len(ts.templates))
		for i, s := range ts.templates {
			t, err := topic.ParseTemplate(s)
			if err != nil {
				bad(fmt.Sprintf("topicTemplates[%d]", i), err)
				continue
			}
			templates = append(templates, t)
		}
		if !ok {
			continue
		}
		b.spaceByName[key] = int32(len(b.snap.spaces))
		b.snap.spaces = append(b.snap.spaces, topicSpace{name: ts.name, templates: templates, where: where})
	}
	if otherNS > 0 {
		b.warn("%s: %d topic spaces of other namespaces ignored", pf.name, otherNS)
	}
}

func (b *builder) addRoles(pf *parsedFile) {
	for _, rd := range pf.roles {
		ok := true
		bad := func(field string, err error) {
			b.fail(pf.name, rd.entry, field, err)
			ok = false
		}
		var id string
		if rd.id != "" {
			var err error
			if id, err = parseRoleID(rd.id); err != nil {
				bad("id", err)
			}
		}
		if rd.az && id != "" {
			if prev := b.roleByID[id]; prev != nil && prev.builtin {
				continue // az role definition list includes the built-ins
			}
		}
		key := strings.ToLower(rd.name)
		switch {
		case strings.TrimSpace(rd.name) == "":
			bad("name", errors.New("required"))
		case b.roleByName[key] != nil:
			bad("name", fmt.Errorf("role %q is already defined (%s)", rd.name, b.roleByName[key].where))
		}
		if id != "" && b.roleByID[id] != nil {
			bad("id", fmt.Errorf("role id %s is already used by role %q", id, b.roleByID[id].name))
		}
		if rd.conditional > 0 {
			b.warn("%s: %s: %d permissions with ABAC conditions (not evaluated) grant nothing", pf.name, rd.entry, rd.conditional)
		}
		perms := make([]permission, 0, len(rd.perms))
		for pi, p := range rd.perms {
			lower := func(field string, in []string) []string {
				out := make([]string, 0, len(in))
				for i, a := range in {
					f := fmt.Sprintf("%s[%d]", field, i)
					if rd.az {
						f = fmt.Sprintf("permissions[%d].%s", pi, f)
					}
					if err := checkActionPattern(a); err != nil {
						bad(f, err)
						continue
					}
					out = append(out, strings.ToLower(a))
				}
				return out
			}
			perms = append(perms, permission{
				dataActions:    lower("dataActions", p.dataActions),
				notDataActions: lower("notDataActions", p.notDataActions),
			})
		}
		if !ok {
			continue
		}
		r := newRole(rd.name, id, false, pf.name+": "+rd.entry, perms)
		b.snap.roles++
		b.roleByName[key] = r
		if id != "" {
			b.roleByID[id] = r
		}
		if !r.publish && !r.subscribe && !rd.az {
			b.warn("%s: %s: role %q grants neither publish nor subscribe on topic spaces", pf.name, rd.entry, rd.name)
		}
	}
}

// ignored counts az export entries that grant nothing, by cause.
type ignored struct {
	unknownRole, condition, badScope, managementGroup int
}

func (b *builder) addAssignments(pf *parsedFile) {
	var ign ignored
	for _, ra := range pf.assignments {
		b.addAssignment(pf, ra, false, &ign)
	}
	for _, ra := range pf.denies {
		b.addAssignment(pf, ra, true, &ign)
	}
	if n := ign.unknownRole + ign.condition + ign.badScope + ign.managementGroup; n > 0 {
		b.warn("%s: %d role assignments ignored: %d name roles defined in no policy file, %d have ABAC conditions (not evaluated), %d have unrecognised scopes, %d are at management-group scope (not resolvable to subscriptions; repeat them at the subscription)",
			pf.name, n, ign.unknownRole, ign.condition, ign.badScope, ign.managementGroup)
	}
}

func (b *builder) addAssignment(pf *parsedFile, ra rawAssignment, deny bool, ign *ignored) {
	ok := true
	bad := func(field string, err error) {
		b.fail(pf.name, ra.entry, field, err)
		ok = false
	}
	switch {
	case ra.principalID == "":
		bad("principalId", errors.New("required"))
	case strings.TrimSpace(ra.principalID) != ra.principalID:
		bad("principalId", fmt.Errorf("%q has surrounding white space", ra.principalID))
	case strings.ContainsFunc(ra.principalID, unicode.IsControl):
		bad("principalId", fmt.Errorf("%q holds a control character", ra.principalID))
	case looksLikeAppRole(ra.principalID) && !strings.HasPrefix(ra.principalID, appRolePrefix):
		bad("principalId", fmt.Errorf("%q: an app role is written %s<role> in lower case", ra.principalID, appRolePrefix))
	}
	if deny && ra.principalType == "" && authz.IsGUID(ra.principalID) {
		b.warn("%s: %s: deny assignment without principalType: if %s is a group, set principalType: Group, or the deny does not apply to tokens with a groups overage", pf.name, ra.entry, ra.principalID)
	}
	r, err := b.resolveRole(ra)
	switch {
	case err != nil && ra.az:
		ign.unknownRole++
		b.drop(pf, ra, deny, "%v, so it grants nothing", err.err)
		return
	case err != nil:
		bad(err.field, err.err)
	}
	sc, serr := parseScope(ra.scope)
	switch {
	case ra.scope == "":
		bad("scope", errors.New("required"))
	case serr != nil && ra.az:
		ign.badScope++
		return
	case serr != nil:
		bad("scope", fmt.Errorf("%q: %w", truncate(ra.scope), serr))
	case sc.kind == scopeOther && !ra.az:
		bad("scope", fmt.Errorf("%q is not /, a subscription, a resource group, an Event Grid namespace or a topic space", truncate(ra.scope)))
	}
	if ra.condition != "" {
		ign.condition++
		b.drop(pf, ra, deny, "has an ABAC condition, which the proxy does not evaluate, so it grants nothing")
		return
	}
	if !ok {
		return
	}
	a := assignment{
		file: pf.name, entry: ra.entry,
		principalID: ra.principalID, principalType: ra.principalType,
		role: r, scope: sc, deny: deny,
	}
	switch {
	case sc.containsNamespace(b.snap.ns):
		a.spaces = b.allSpaces()
		if len(a.spaces) == 0 {
			a.outside = "no topic space is defined"
		}
	case sc.inNamespace(b.snap.ns):
		if i, found := b.spaceByName[strings.ToLower(sc.space)]; found {
			a.spaces = []int32{i}
		} else {
			a.outside = fmt.Sprintf("its scope names topic space %q, which no policy file defines", sc.space)
			b.warn("%s: %s: scope names topic space %q, which no policy file defines; it grants nothing", pf.name, ra.entry, sc.space)
		}
	case isManagementGroup(sc):
		// Azure applies it to every subscription under the group, which
		// the policy does not say: granting nothing is the safe reading.
		// (Only az exports get here: native files refuse such scopes,
		// and az exports hold no deny assignments.)
		a.outside = fmt.Sprintf("its scope is a management group (%s): the proxy cannot tell which subscriptions it holds; assign at the subscription instead", ra.scope)
		ign.managementGroup++
	default:
		a.outside = fmt.Sprintf("its scope does not contain namespace %s", b.snap.namespace)
		if !ra.az {
			b.warn("%s: %s: scope %s is outside namespace %s; it grants nothing here", pf.name, ra.entry, ra.scope, b.snap.namespace)
		}
	}
	key := principalKey(ra.principalID)
	if deny {
		b.snap.denyByPrincipal[key] = append(b.snap.denyByPrincipal[key], int32(len(b.snap.denies)))
		if isGroupType(ra.principalType) {
			// A token with a groups overage does not say whether its
			// principal is in the group: the deny applies (fail closed).
			b.snap.denyByPrincipal[overageGroups] = append(b.snap.denyByPrincipal[overageGroups], int32(len(b.snap.denies)))
		}
		b.snap.denies = append(b.snap.denies, a)
	} else {
		b.snap.byPrincipal[key] = append(b.snap.byPrincipal[key], int32(len(b.snap.assignments)))
		b.snap.assignments = append(b.snap.assignments, a)
	}
}

// isGroupType reports whether an assignment's principalType names a group.
func isGroupType(t string) bool {
	return strings.EqualFold(t, "Group") || strings.EqualFold(t, "ForeignGroup")
}

// drop records why an az export's assignment was left out, for can-i
// (Snapshot.dropped).
// A deny left out explains no refusal, so only role assignments are kept.
func (b *builder) drop(pf *parsedFile, ra rawAssignment, deny bool, format string, args ...any) {
	if deny {
		return
	}
	key := principalKey(ra.principalID)
	b.snap.dropped[key] = append(b.snap.dropped[key], fmt.Sprintf("role assignment %s in %s (principal %q, scope %s) %s",
		ra.entry, pf.name, ra.principalID, ra.scope, fmt.Sprintf(format, args...)))
}

// allSpaces returns the indexes of every topic space, shared by all the
// assignments at namespace scope or above.
func (b *builder) allSpaces() []int32 {
	if b.all == nil && len(b.snap.spaces) > 0 {
		b.all = make([]int32, len(b.snap.spaces))
		for i := range b.all {
			b.all[i] = int32(i)
		}
	}
	return b.all
}

// fieldError is a problem with a field, before it is located in a file.
type fieldError struct {
	field string
	err   error
}

// resolveRole finds the role of an assignment by id and/or name. With both,
// a native file must name the same role twice; an az export (which always
// has both) is resolved by id first.
func (b *builder) resolveRole(ra rawAssignment) (*role, *fieldError) {
	if ra.roleID == "" && ra.roleName == "" {
		return nil, &fieldError{"roleDefinitionName", errors.New("roleDefinitionName or roleDefinitionId is required")}
	}
	var byID, byName *role
	if ra.roleID != "" {
		id, err := parseRoleID(ra.roleID)
		if err != nil {
			return nil, &fieldError{"roleDefinitionId", err}
		}
		byID = b.roleByID[id]
		if byID == nil && (!ra.az || ra.roleName == "") {
			return nil, &fieldError{"roleDefinitionId", fmt.Errorf("role %s is neither built-in nor defined in roleDefinitions", id)}
		}
	}
	if ra.roleName != "" {
		byName = b.roleByName[strings.ToLower(ra.roleName)]
		if byName == nil && (!ra.az || byID == nil) {
			return nil, &fieldError{"roleDefinitionName", fmt.Errorf("role %q is neither built-in nor defined in roleDefinitions", truncate(ra.roleName))}
		}
	}
	switch {
	case byID != nil && byName != nil && byID != byName && !ra.az:
		return nil, &fieldError{"roleDefinitionName", fmt.Errorf("names role %q but roleDefinitionId names %q", byName.name, byID.name)}
	case byID != nil:
		return byID, nil
	}
	return byName, nil
}

// warnNothingGranted reports a policy that grants nothing: valid, since it
// denies everything, but rarely intended.
func (b *builder) warnNothingGranted() {
	s := b.snap
	if len(s.spaces) == 0 {
		b.warn("no topic space is defined: the policy grants nothing")
		return
	}
	for _, a := range s.assignments {
		if (a.role.publish || a.role.subscribe) && len(a.spaces) > 0 {
			return
		}
	}
	b.warn("no role assignment grants publish or subscribe on a topic space of namespace %s: the policy grants nothing", s.namespace)
}
