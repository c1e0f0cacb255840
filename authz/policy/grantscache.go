package policy

import (
	"encoding/binary"
	"sync"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
)

// grantsCacheSize bounds how many compiled Grants a snapshot keeps for
// reuse beyond those live connections hold anyway.
const grantsCacheSize = 256

// grantsCache shares compiled Grants between connections whose grants cannot
// differ: same principals (authentication name, groups, app roles) and same
// values of every variable the snapshot's templates use. The client id is
// part of the key only when some template refers to ${client.clientId}.
// Compiling is most of a CONNECT's CPU after the signature check with a
// large policy, and a device fleet reconnecting after a broker restart
// compiles the same grants thousands of times; sharing also keeps one copy
// in memory instead of one per connection (issue 5). Grants are immutable,
// so sharing is safe. The cache lives and dies with its Snapshot: a reload
// starts empty.
type grantsCache struct {
	mu sync.Mutex
	m  map[string]*Grants
}

// get returns the cached grants of key, or nil.
func (c *grantsCache) get(key string) *Grants {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

// put remembers g under key; when full, arbitrary entries make room
// (map order), so memory stays bounded whatever identities connect.
func (c *grantsCache) put(key string, g *Grants) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*Grants)
	}
	if len(c.m) >= grantsCacheSize {
		for k := range c.m {
			if len(c.m) < grantsCacheSize-grantsCacheSize/8 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = g
}

// grantsKey encodes everything Grants(id, clientID) depends on, each string
// length-prefixed so that no two different inputs share a key.
func (s *Snapshot) grantsKey(id *authz.Identity, clientID string) string {
	b := make([]byte, 0, 256)
	str := func(v string) {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	list := func(vs []string) {
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			str(v)
		}
	}
	str(id.AuthenticationName)
	if id.GroupsOverage { // a tag first: an overage is neither no groups nor any list
		b = append(b, 1)
	} else {
		b = append(b, 0)
		list(id.Groups)
	}
	list(id.AppRoles)
	if s.usesClientID {
		str(clientID)
	}
	for _, k := range s.attrKeys {
		// A tag byte, so that an absent attribute differs from an
		// empty one and from any list.
		vs, ok := id.Attributes[k]
		if !ok {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		list(vs)
	}
	return string(b)
}
