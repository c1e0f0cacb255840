package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token/tokentest"
)

// Fixed ids of the benchmark's tenant, principal and namespace.
const (
	benchTenant    = "6a1b2c3d-0000-4000-8000-00000000be0c"
	benchPrincipal = "b0b0b0b0-0000-4000-8000-0000000000b1"
	benchNamespace = "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/bench/providers/Microsoft.EventGrid/namespaces/bench"
)

// Shape of the generated policy (SPEC 3): spaces × templates, and the total
// number of role assignments of which the benchmark principal's are two.
const (
	policySpaces      = 10
	policyTemplates   = 10
	policyAssignments = 1000
)

// identity is the benchmark's loopback identity provider and the tokens of
// its one principal. The principal publishes and subscribes on topics that
// match the last template of the last topic space, so a proxy that scans
// templates in order does the most work.
type identity struct {
	issuer *tokentest.Issuer
	tokens []string // valid tokens of benchPrincipal, reused across connections
	// fresh are distinct tokens of benchPrincipal that are each used once,
	// so the proxy verifies every one in full: a device's first CONNECT of
	// the hour (freshConnect), a refreshed token at re-authentication
	// (freshReauth).
	fresh [2]freshPool
}

// Fresh token pools, one per cell so that one cannot starve the other.
const (
	freshConnect = iota
	freshReauth
)

type freshPool struct {
	tokens []string
	next   atomic.Int64
}

// newIdentity starts the issuer and mints n tokens valid for ttl.
func newIdentity(n int, ttl time.Duration) (*identity, error) {
	iss, err := tokentest.New()
	if err != nil {
		return nil, fmt.Errorf("start test issuer: %w", err)
	}
	id := &identity{issuer: iss}
	for range n {
		tok, err := iss.MintEntra(benchTenant, benchPrincipal, 2, nil, ttl)
		if err != nil {
			iss.Close()
			return nil, fmt.Errorf("mint token: %w", err)
		}
		id.tokens = append(id.tokens, tok)
	}
	return id, nil
}

// mintFresh mints n distinct tokens for each fresh pool (a jti claim tells
// them apart) on all cores.
func (id *identity) mintFresh(n int, ttl time.Duration) error {
	all := make([]string, 2*n)
	var next atomic.Int64
	var fail firstError
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(all) && fail.get() == nil; i = int(next.Add(1)) - 1 {
				tok, err := id.issuer.MintEntra(benchTenant, benchPrincipal, 2, map[string]any{"jti": fmt.Sprintf("fresh-%d", i)}, ttl)
				if err != nil {
					fail.set(fmt.Errorf("mint token: %w", err))
					return
				}
				all[i] = tok
			}
		})
	}
	wg.Wait()
	id.fresh[freshConnect].tokens, id.fresh[freshReauth].tokens = all[:n], all[n:]
	return fail.get()
}

// freshToken returns a token of pool never handed out before, or false
// when all have been.
func (id *identity) freshToken(pool int) (string, bool) {
	p := &id.fresh[pool]
	i := int(p.next.Add(1)) - 1
	if i >= len(p.tokens) {
		return "", false
	}
	return p.tokens[i], true
}

// rewindFresh hands out every fresh token again from the first. Each proxy
// target is a process with its own caches, so tokens another proxy has
// verified are still new to the next one.
func (id *identity) rewindFresh() {
	for i := range id.fresh {
		id.fresh[i].next.Store(0)
	}
}

// token returns the i-th token, cycling.
func (id *identity) token(i int) string { return id.tokens[i%len(id.tokens)] }

// Close stops the issuer.
func (id *identity) Close() { id.issuer.Close() }

// benchTopic is the topic prefix every load cell publishes under; it matches
// the last template of the last topic space.
func benchTopic(cell string) string {
	return fmt.Sprintf("bench/%s/%d/%d/%s", benchPrincipal, policySpaces-1, policyTemplates-1, cell)
}

type policyFile struct {
	TopicSpaces     []topicSpace     `json:"topicSpaces"`
	RoleAssignments []roleAssignment `json:"roleAssignments"`
}

type topicSpace struct {
	Name           string   `json:"name"`
	TopicTemplates []string `json:"topicTemplates"`
}

type roleAssignment struct {
	PrincipalID        string `json:"principalId"`
	PrincipalType      string `json:"principalType"`
	RoleDefinitionName string `json:"roleDefinitionName"`
	Scope              string `json:"scope"`
}

const (
	rolePublisher  = "EventGrid TopicSpaces Publisher"
	roleSubscriber = "EventGrid TopicSpaces Subscriber"
)

// writePolicy writes the policy file (JSON, which the loader accepts as
// YAML's subset): policySpaces topic spaces of policyTemplates templates
// each, and policyAssignments role assignments — the benchmark principal's
// publisher and subscriber roles on the namespace, the rest for other
// principals spread over the spaces and the namespace.
func writePolicy(path string) error {
	var p policyFile
	for s := range policySpaces {
		ts := topicSpace{Name: fmt.Sprintf("ts%d", s)}
		for t := range policyTemplates {
			ts.TopicTemplates = append(ts.TopicTemplates, fmt.Sprintf("bench/${client.authenticationName}/%d/%d/#", s, t))
		}
		p.TopicSpaces = append(p.TopicSpaces, ts)
	}
	p.RoleAssignments = []roleAssignment{
		{PrincipalID: benchPrincipal, PrincipalType: "ServicePrincipal", RoleDefinitionName: rolePublisher, Scope: benchNamespace},
		{PrincipalID: benchPrincipal, PrincipalType: "ServicePrincipal", RoleDefinitionName: roleSubscriber, Scope: benchNamespace},
	}
	for i := len(p.RoleAssignments); i < policyAssignments; i++ {
		role := rolePublisher
		if i%2 == 1 {
			role = roleSubscriber
		}
		scope := benchNamespace
		if i%5 != 0 {
			scope = fmt.Sprintf("%s/topicSpaces/ts%d", benchNamespace, i%policySpaces)
		}
		p.RoleAssignments = append(p.RoleAssignments, roleAssignment{
			PrincipalID:        fmt.Sprintf("0000%04x-1111-4000-8000-%012x", i, i),
			PrincipalType:      "ServicePrincipal",
			RoleDefinitionName: role,
			Scope:              scope,
		})
	}
	return writeJSON(path, p)
}

// writeProxyConfig writes the proxy's configuration (SPEC 7; JSON is valid
// YAML): TCP listener on listen, no admin listener, the issuer's Entra
// tenant, the generated policy.
func writeProxyConfig(path, listen, upstream, authority, policyPath string) error {
	cfg := map[string]any{
		"listeners": map[string]any{"tcp": listen},
		"admin":     map[string]any{"address": ""},
		"upstream":  map[string]any{"address": upstream},
		"auth": map[string]any{
			"entra": map[string]any{"tenants": []string{benchTenant}, "authority": authority},
		},
		"policy": map[string]any{"namespace": benchNamespace, "files": []string{policyPath}},
	}
	return writeJSON(path, cfg)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
