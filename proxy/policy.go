package proxy

import (
	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/policy"
)

// StorePolicy adapts a policy.Store to Policy: each connection compiles its
// grants from the snapshot current at CONNECT, re-authentication or
// re-check (SPEC 3.6).
func StorePolicy(s *policy.Store) Policy { return storePolicy{s} }

type storePolicy struct{ s *policy.Store }

func (p storePolicy) Grants(id *authz.Identity, clientID string) Grants {
	return p.s.Current().Grants(id, clientID)
}
