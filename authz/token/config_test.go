package token_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
)

// SPEC 7 "auth:", STYLE 20: Validate reports every problem with its key
// path in one error.
func TestConfigValidate(t *testing.T) {
	base := func() token.Config {
		c := token.DefaultConfig()
		c.Entra.Tenants = []string{tenant}
		return c
	}
	tests := []struct {
		name   string
		mutate func(*token.Config)
		want   []string // substrings of the error; none → valid
	}{
		{name: "defaults with a tenant", mutate: func(*token.Config) {}},
		{name: "generic issuer, discovery implied", mutate: func(c *token.Config) {
			c.Entra.Tenants = nil
			c.Issuers = []token.IssuerConfig{{Issuer: "https://idp.example"}}
		}},
		{name: "file issuer with a URN", mutate: func(c *token.Config) {
			c.Issuers = []token.IssuerConfig{{Issuer: "urn:x", JWKSFile: "/keys.pem", Method: token.MethodCustomJWT}}
		}},
		{name: "zero clock skew is allowed", mutate: func(c *token.Config) { c.ClockSkew = 0 }},
		{name: "minRefreshInterval above refreshInterval is allowed", mutate: func(c *token.Config) { c.MinRefreshInterval = time.Hour }},
		{name: "anonymous only", mutate: func(c *token.Config) { c.Entra.Tenants = nil; c.AllowAnonymous = true }},
		{name: "nothing configured", mutate: func(c *token.Config) { c.Entra.Tenants = nil },
			want: []string{"at least one issuer or Entra tenant"}},
		{name: "durations", mutate: func(c *token.Config) {
			c.ClockSkew, c.RefreshInterval, c.MinRefreshInterval, c.MaxStale = -time.Second, 0, -1, 0
		}, want: []string{"auth.clockSkew:", "auth.refreshInterval:", "auth.minRefreshInterval:", "auth.maxStale:"}},
		{name: "maxStale not longer than refreshInterval", mutate: func(c *token.Config) {
			c.RefreshInterval, c.MinRefreshInterval, c.MaxStale = 3*time.Second, time.Second, time.Second
		},
			want: []string{"auth.maxStale: must be longer than auth.refreshInterval and auth.minRefreshInterval (3s)"}},
		{name: "maxStale not longer than minRefreshInterval", mutate: func(c *token.Config) {
			c.RefreshInterval, c.MinRefreshInterval, c.MaxStale = time.Minute, 10*time.Minute, 5*time.Minute
		}, want: []string{"auth.maxStale: must be longer than auth.refreshInterval and auth.minRefreshInterval (10m0s)"}},
		{name: "authority", mutate: func(c *token.Config) { c.Entra.Authority = "ftp://login" },
			want: []string{"auth.entra.authority:"}},
		{name: "authority missing with tenants", mutate: func(c *token.Config) { c.Entra.Authority = "" },
			want: []string{"auth.entra.authority: required"}},
		{name: "authority with a query", mutate: func(c *token.Config) { c.Entra.Authority = "https://login?x=1" },
			want: []string{"auth.entra.authority:"}},
		{name: "tenant not a GUID", mutate: func(c *token.Config) { c.Entra.Tenants = []string{tenant, "contoso.onmicrosoft.com"} },
			want: []string{"auth.entra.tenants[1]:"}},
		{name: "tenant twice", mutate: func(c *token.Config) { c.Entra.Tenants = []string{tenant, strings.ToUpper(tenant)} },
			want: []string{"auth.entra.tenants[1]:", "already configured"}},
		{name: "empty audience", mutate: func(c *token.Config) { c.Audiences = []string{"a", " "} },
			want: []string{"auth.audiences[1]:"}},
		{name: "no audiences at all", mutate: func(c *token.Config) { c.Audiences = nil },
			want: []string{"auth.audiences:"}},
		{name: "issuer problems all reported", mutate: func(c *token.Config) {
			c.Issuers = []token.IssuerConfig{
				{Issuer: "https://ok.example", Discovery: true},
				{Issuer: "https://two.example", Discovery: true, JWKSURL: "https://two.example/jwks", Method: "SCRAM"},
				{JWKSURL: "not a url", Audiences: []string{""}},
				{Issuer: "urn:nodiscovery", PrincipalClaim: "exp"},
				{Issuer: "https://ok.example", JWKSFile: "/k"},
			}
		}, want: []string{
			"auth.issuers[1]: set exactly one key source",
			"auth.issuers[1].method:",
			"auth.issuers[2].issuer: required",
			"auth.issuers[2].jwksURL:",
			"auth.issuers[2].audiences[0]:",
			"auth.issuers[3].issuer: discovery needs an http(s) issuer URL",
			"auth.issuers[3].principalClaim:",
			"auth.issuers[4].issuer:", "already configured by auth.issuers[0].issuer",
		}},
		{name: "generic issuer colliding with the Entra v1 issuer", mutate: func(c *token.Config) {
			c.Issuers = []token.IssuerConfig{{Issuer: "https://sts.windows.net/" + tenant + "/", JWKSFile: "/k"}}
		}, want: []string{"auth.issuers[0].issuer:", "already configured by auth.entra.tenants[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				if _, err := token.NewVerifier(c, token.Options{}); err != nil {
					t.Errorf("NewVerifier: got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got nil, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
			if _, verr := token.NewVerifier(c, token.Options{}); verr == nil {
				t.Errorf("NewVerifier accepted an invalid config")
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	c := token.DefaultConfig()
	if c.ClockSkew != 60*time.Second || c.RefreshInterval != 15*time.Minute || c.MinRefreshInterval != 30*time.Second ||
		c.MaxStale != 24*time.Hour || c.AllowAnonymous || c.Entra.Authority != "https://login.microsoftonline.com" ||
		len(c.Audiences) != 2 || c.Audiences[0] != "https://eventgrid.azure.net" || c.Audiences[1] != "https://eventgrid.azure.net/" {
		t.Errorf("got %+v, want the SPEC 7 defaults", c)
	}
}

func TestNewVerifierOptions(t *testing.T) {
	c := token.DefaultConfig()
	c.Entra.Tenants = []string{tenant}
	if _, err := token.NewVerifier(c, token.Options{MaxTokenSize: -1}); err == nil {
		t.Errorf("negative MaxTokenSize: got nil, want an error")
	}
}
