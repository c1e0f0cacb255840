// Package topic holds the pure functions of MQTT topic handling that every
// authorization decision rests on: validation of topic names and filters,
// standard MQTT matching, the filter ⊆ filter relation of SPEC 3.2, shared
// subscriptions, and Event Grid topic templates with their variables
// (SPEC 3.1).
//
// Invariants:
//   - Nothing here allocates on the per-packet path: ValidateName,
//     ValidateFilter, Match, Subset, Overlap and SplitShared return values
//     or package-level sentinel errors only.
//   - A template variable never widens a match. A value that is missing,
//     empty, contains '/', '+', '#' or U+0000, is not UTF-8, has too many
//     values, or makes the filter too long or reserved ('$') makes the
//     template resolve to nothing (SPEC 3.1).
//   - Topics and templates starting with '$' are reserved: templates may not
//     start with a literal '$', and a filter starting with a wildcard never
//     matches a topic starting with '$' [MQTT-4.7.2-1].
//
// The package imports only the standard library so that the policy loader,
// the proxy and the CLI can share it without cycles.
package topic
