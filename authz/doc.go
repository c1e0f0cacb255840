// Package authz holds every security decision of the proxy: who a client is
// (authz/token turns an OAUTH2-JWT into an Identity) and what it may do
// (authz/policy turns topic spaces and role assignments into Grants).
//
// The root package holds only the shared vocabulary (Identity, Action,
// Decision) so the children do not import each other in circles. Nothing under
// authz sees a socket or an MQTT packet; authentication lives here rather than
// in a separate top-level package because the design card fixes the top level
// and both halves are one decision pipeline with one boundary type, Identity.
package authz
