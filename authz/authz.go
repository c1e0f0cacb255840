package authz

import (
	"log/slog"
	"time"
)

// Identity is an authenticated client principal, produced by authz/token from
// a verified token and consumed by authz/policy to compile grants. Its
// slices and map may be shared with other identities (the verifier's cache
// of verified tokens hands out shallow copies): treat them as read-only.
type Identity struct {
	// AuthenticationName is the principal's value: the Entra object id (oid)
	// or the configured principal claim of a generic OIDC issuer (SPEC 2.1).
	AuthenticationName string
	// Issuer is the configured issuer the token was accepted for. For Entra
	// it is the tenant's v2 issuer whatever the token's version, so that v1
	// and v2 tokens of one principal are the same principal.
	Issuer string
	// TenantID is the Entra tenant id (tid); empty for other issuers.
	TenantID string
	// Method is the MQTT Authentication Method the token arrived with.
	Method string
	// Groups are group object ids from the groups claim.
	Groups []string
	// GroupsOverage is true when the token carried a groups overage
	// (_claim_names.groups): group-based assignments do not apply.
	GroupsOverage bool
	// AppRoles are the values of the roles claim (assignable as approle:<v>).
	AppRoles []string
	// Attributes are the client attributes usable in topic templates
	// (${client.attributes.<key>}): every other claim whose value is a
	// string, a 32-bit integer (formatted in decimal) or an array of strings.
	// A scalar is a one-element slice.
	Attributes map[string][]string
	// ExpiresAt is the token's exp claim (without skew).
	ExpiresAt time.Time
}

// SamePrincipal reports whether o names the same principal as id: same issuer
// (tenant) and same authentication name (SPEC 2.2 re-authentication rule).
func (id *Identity) SamePrincipal(o *Identity) bool {
	return id != nil && o != nil &&
		id.Issuer == o.Issuer &&
		id.TenantID == o.TenantID &&
		id.AuthenticationName == o.AuthenticationName
}

// LogValue prints the principal without claims that are not needed to follow
// an audit trail.
func (id *Identity) LogValue() slog.Value {
	if id == nil {
		return slog.StringValue("anonymous")
	}
	return slog.GroupValue(
		slog.String("name", id.AuthenticationName),
		slog.String("issuer", id.Issuer),
		slog.String("tenant", id.TenantID),
	)
}

// Action is what a client wants to do with a topic.
type Action uint8

const (
	// Publish is a PUBLISH (or Will) from the client.
	Publish Action = iota + 1
	// Subscribe is one topic filter of a SUBSCRIBE.
	Subscribe
	// Receive is a PUBLISH from the broker to the client; it is allowed when
	// the topic is covered by the principal's subscribe permission (SPEC 3.4).
	Receive
)

// String returns a fixed label usable in logs and metric labels.
func (a Action) String() string {
	switch a {
	case Publish:
		return "publish"
	case Subscribe:
		return "subscribe"
	case Receive:
		return "receive"
	}
	return "other"
}

// DenyReason says why a Decision is a denial; the zero value is used for
// allowed decisions.
type DenyReason uint8

const (
	// NotDenied is the reason of an allowed Decision.
	NotDenied DenyReason = iota
	// NoGrant: no topic space on which the principal holds the action
	// matches the topic or covers the filter.
	NoGrant
	// DenyAssignment: a deny assignment covers the topic.
	DenyAssignment
	// InvalidTopic: the topic or filter is not valid or is reserved ($...).
	InvalidTopic
)

// String returns a fixed label usable in logs and metric labels.
func (r DenyReason) String() string {
	switch r {
	case NotDenied:
		return "allowed"
	case NoGrant:
		return "no_grant"
	case DenyAssignment:
		return "deny_assignment"
	case InvalidTopic:
		return "invalid_topic"
	}
	return "other"
}

// Decision is the answer to one authorization question. It is a value, not
// an error: an error means the question could not be evaluated.
type Decision struct {
	Allowed bool
	Reason  DenyReason
	// TopicSpace and Template name what decided (the granting template for
	// an allowed decision, the denying one for a deny assignment); empty when
	// nothing matched.
	TopicSpace string
	Template   string
}

// IsGUID reports whether s has the 8-4-4-4-12 hexadecimal shape of an Entra
// object or tenant id (either case).
func IsGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
