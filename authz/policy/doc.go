// Package policy turns policy files — topic spaces, role definitions, role
// and deny assignments in the native YAML/JSON format, or the JSON the az
// CLI prints for a real Event Grid namespace — into an immutable Snapshot,
// and a Snapshot plus a client's identity into Grants that answer publish,
// subscribe and receive questions (SPEC 3).
//
// Invariants:
//   - Fail closed. A file that cannot be read, parsed or validated makes
//     Load fail; a Store keeps its previous Snapshot when a reload fails
//     (SPEC 3.6). A policy that grants nothing is valid (it denies
//     everything) and is reported as a warning.
//   - A Snapshot is never modified after Load returns, so it can be shared by
//     every connection without locks; Store swaps whole snapshots
//     atomically (STYLE 11).
//   - Decisions are deterministic: they never depend on the iteration order
//     of a map. Deny assignments win, then allow, and the default is deny;
//     ties are broken by file order (topic spaces, then templates).
//   - Grants answer on the per-packet path without allocating.
//   - Template variables never widen an allow (an unresolvable template
//     grants nothing) and never narrow a deny (an unresolvable deny template
//     denies its widest form).
package policy
