package token

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
)

// Authentication Methods an issuer can be configured with (SPEC 2). The
// proxy compares them exactly: MQTT method names are case-sensitive.
const (
	// MethodOAuth2JWT is the Event Grid method and the default.
	MethodOAuth2JWT = "OAUTH2-JWT"
	// MethodCustomJWT is accepted for issuers configured with it.
	MethodCustomJWT = "CUSTOM-JWT"
)

// Defaults of SPEC 7 "auth:".
const (
	// DefaultAuthority is the Entra ID authority of the public cloud.
	DefaultAuthority = "https://login.microsoftonline.com"
	// DefaultPrincipalClaim is the principal claim of a generic issuer.
	DefaultPrincipalClaim = "sub"
	// DefaultMaxTokenSize is SPEC 7 limits.maxAuthDataSize (8 KiB).
	DefaultMaxTokenSize = 8192
)

// Config is the "auth:" section of SPEC 7: which issuers are trusted, which
// audiences are accepted and how their signing keys are cached. The
// mapstructure tags are the camelCase keys of the YAML file.
type Config struct {
	// Audiences are accepted aud values for Entra tenants and for issuers
	// without their own list. Default: https://eventgrid.azure.net and
	// https://eventgrid.azure.net/ (EG documents the one with the slash; real
	// tokens vary, SPEC 2.1).
	Audiences []string `mapstructure:"audiences"`
	// ClockSkew is tolerated on exp, nbf and iat. Default: 60s; 0 is allowed.
	ClockSkew time.Duration `mapstructure:"clockSkew"`
	// RefreshInterval is the background key set refresh period, and the upper
	// bound of a Cache-Control max-age. Default: 15m.
	RefreshInterval time.Duration `mapstructure:"refreshInterval"`
	// MinRefreshInterval is the smallest gap between two fetches of one
	// issuer's key set, whatever triggers them (unknown kid, Cache-Control,
	// retries): an attacker cannot make the proxy hammer the IdP (SPEC 2.1).
	// When it exceeds RefreshInterval it wins. Default: 30s.
	MinRefreshInterval time.Duration `mapstructure:"minRefreshInterval"`
	// MaxStale is how long the last good key set is used after its last
	// successful fetch while fetches fail; after that the issuer's tokens get
	// ErrKeysUnavailable (SPEC 5). Default: 24h.
	MaxStale time.Duration `mapstructure:"maxStale"`
	// AllowAnonymous admits clients without an Authentication Method; the
	// proxy reads it, the verifier only relaxes Validate. Default: false.
	AllowAnonymous bool `mapstructure:"allowAnonymous"`
	// Entra lists Microsoft Entra ID tenants.
	Entra EntraConfig `mapstructure:"entra"`
	// Issuers lists other OIDC/JWT issuers.
	Issuers []IssuerConfig `mapstructure:"issuers"`
}

// EntraConfig trusts Microsoft Entra ID tenants. For each tenant both token
// versions are accepted: v1 (iss https://sts.windows.net/{tid}/, in Azure
// China https://sts.chinacloudapi.cn/{tid}/) and v2 (iss
// {authority}/{tid}/v2.0), verified with {authority}/{tid}/discovery/v2.0/keys
// (SPEC 2.1). Their method is OAUTH2-JWT and their principal claim oid.
type EntraConfig struct {
	// Tenants are tenant ids (GUIDs, as in the tid claim). Default: none.
	Tenants []string `mapstructure:"tenants"`
	// Authority is the login endpoint: overridable for sovereign clouds
	// (https://login.microsoftonline.us, https://login.chinacloudapi.cn) and
	// tests. Default: https://login.microsoftonline.com.
	Authority string `mapstructure:"authority"`
}

// IssuerConfig trusts one generic OIDC/JWT issuer. Exactly one key source is
// used: Discovery, JWKSURL or JWKSFile; when neither JWKSURL nor JWKSFile is
// set, discovery is implied (SPEC 7 shows discovery: true as the default).
type IssuerConfig struct {
	// Issuer must equal the token's iss exactly. Required.
	Issuer string `mapstructure:"issuer"`
	// Discovery reads jwks_uri from {issuer}/.well-known/openid-configuration,
	// whose issuer must equal Issuer. Default: true unless another source is
	// set.
	Discovery bool `mapstructure:"discovery"`
	// JWKSURL is the http(s) URL of the issuer's JWKS. Default: "".
	JWKSURL string `mapstructure:"jwksURL"`
	// JWKSFile is a local JWKS or PEM file (public keys or certificates;
	// a PEM key's kid is its RFC 7638 thumbprint), re-read at every refresh.
	// Default: "".
	JWKSFile string `mapstructure:"jwksFile"`
	// PrincipalClaim names the claim whose string value is the principal's
	// authentication name. Default: sub.
	PrincipalClaim string `mapstructure:"principalClaim"`
	// Audiences overrides Config.Audiences for this issuer. Default: none
	// (use Config.Audiences).
	Audiences []string `mapstructure:"audiences"`
	// Method is the MQTT Authentication Method its tokens arrive with:
	// OAUTH2-JWT or CUSTOM-JWT. Default: OAUTH2-JWT.
	Method string `mapstructure:"method"`
}

// DefaultConfig returns the defaults of SPEC 7 with no issuer configured.
func DefaultConfig() Config {
	return Config{
		Audiences:          []string{"https://eventgrid.azure.net", "https://eventgrid.azure.net/"},
		ClockSkew:          60 * time.Second,
		RefreshInterval:    15 * time.Minute,
		MinRefreshInterval: 30 * time.Second,
		MaxStale:           24 * time.Hour,
		Entra:              EntraConfig{Authority: DefaultAuthority},
	}
}

// Validate returns every problem of c with its key path (auth.issuers[1].
// jwksURL: …), joined into one error, or nil (STYLE 20). It does no I/O, so
// check-config can run it offline.
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("auth.%s: %s", key, fmt.Sprintf(format, args...)))
	}

	for i, a := range c.Audiences {
		if strings.TrimSpace(a) == "" {
			add(fmt.Sprintf("audiences[%d]", i), "empty audience")
		}
	}
	if c.ClockSkew < 0 {
		add("clockSkew", "must not be negative, got %s", c.ClockSkew)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"refreshInterval", c.RefreshInterval},
		{"minRefreshInterval", c.MinRefreshInterval},
		{"maxStale", c.MaxStale},
	} {
		if d.v <= 0 {
			add(d.key, "must be positive, got %s", d.v)
		}
	}
	if gap := max(c.RefreshInterval, c.MinRefreshInterval); c.MaxStale > 0 && gap > 0 && c.MaxStale <= gap {
		// While the IdP is up keys are refetched every refreshInterval,
		// or minRefreshInterval when that is longer: a maxStale no
		// longer than that expires a healthy key set between two
		// fetches, refusing CONNECTs and /readyz.
		add("maxStale", "must be longer than auth.refreshInterval and auth.minRefreshInterval (%s), got %s", gap, c.MaxStale)
	}

	// Every issuer string a token may carry must name one issuer only.
	seen := map[string]string{}
	claim := func(iss, key string) {
		if prev, dup := seen[iss]; dup {
			add(key, "issuer %q is already configured by %s", iss, prev)
			return
		}
		seen[iss] = "auth." + key
	}

	if len(c.Entra.Tenants) > 0 || c.Entra.Authority != "" {
		if err := checkHTTPURL(c.Entra.Authority); err != nil {
			add("entra.authority", "%v", err)
		}
	}
	authority := strings.TrimRight(c.Entra.Authority, "/")
	for i, t := range c.Entra.Tenants {
		key := fmt.Sprintf("entra.tenants[%d]", i)
		if !authz.IsGUID(t) {
			add(key, "%q is not a tenant id (a GUID as in the tid claim)", t)
			continue
		}
		t = strings.ToLower(t)
		claim(entraV1Issuer(authority, t), key)
		claim(entraV2Issuer(authority, t), key)
	}
	if len(c.Entra.Tenants) > 0 && len(c.Audiences) == 0 {
		add("audiences", "empty: no Entra token could be accepted")
	}

	for i, is := range c.Issuers {
		key := fmt.Sprintf("issuers[%d]", i)
		if is.Issuer == "" {
			add(key+".issuer", "required")
		} else {
			claim(is.Issuer, key+".issuer")
		}
		sources := 0
		if is.Discovery {
			sources++
		}
		if is.JWKSURL != "" {
			sources++
			if err := checkHTTPURL(is.JWKSURL); err != nil {
				add(key+".jwksURL", "%v", err)
			}
		}
		if is.JWKSFile != "" {
			sources++
		}
		if sources > 1 {
			add(key, "set exactly one key source of discovery, jwksURL and jwksFile")
		}
		if (is.Discovery || sources == 0) && is.Issuer != "" {
			if err := checkHTTPURL(is.Issuer); err != nil {
				add(key+".issuer", "discovery needs an http(s) issuer URL: %v", err)
			}
		}
		switch is.PrincipalClaim {
		case "iss", "aud", "exp", "nbf", "iat":
			add(key+".principalClaim", "%q cannot name a principal", is.PrincipalClaim)
		}
		switch is.Method {
		case "", MethodOAuth2JWT, MethodCustomJWT:
		default:
			add(key+".method", "%q is not %s or %s", is.Method, MethodOAuth2JWT, MethodCustomJWT)
		}
		for j, a := range is.Audiences {
			if strings.TrimSpace(a) == "" {
				add(fmt.Sprintf("%s.audiences[%d]", key, j), "empty audience")
			}
		}
		if len(is.Audiences) == 0 && len(c.Audiences) == 0 {
			add(key+".audiences", "empty, and auth.audiences is empty too: no token could be accepted")
		}
	}

	if len(c.Entra.Tenants) == 0 && len(c.Issuers) == 0 && !c.AllowAnonymous {
		errs = append(errs, errors.New("auth: configure at least one issuer or Entra tenant (or set auth.allowAnonymous)"))
	}
	return errors.Join(errs...)
}

// checkHTTPURL accepts an absolute http or https URL with a host and without
// query, fragment or user info: it is concatenated with paths.
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return errors.New("required")
	case err != nil:
		return fmt.Errorf("not a URL: %w", err)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("%q is not an http(s) URL", s)
	case u.Host == "":
		return fmt.Errorf("%q has no host", s)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("%q must not have a query, fragment or user info", s)
	}
	return nil
}

// entraV1Issuer is the iss of a v1 access token of tenant tid (SPEC 2.1).
// Its host is not the authority's: the public cloud and US Government
// issue v1 tokens as sts.windows.net, Azure China (21Vianet) as
// sts.chinacloudapi.cn, whichever of its two login hosts the authority is.
func entraV1Issuer(authority, tid string) string {
	sts := "https://sts.windows.net/"
	if u, err := url.Parse(authority); err == nil {
		switch strings.ToLower(u.Hostname()) {
		case "login.chinacloudapi.cn", "login.partner.microsoftonline.cn":
			sts = "https://sts.chinacloudapi.cn/"
		}
	}
	return sts + tid + "/"
}

// entraV2Issuer is the iss of a v2 access token of tenant tid; it is also the
// Identity.Issuer of both versions.
func entraV2Issuer(authority, tid string) string { return authority + "/" + tid + "/v2.0" }

// entraKeysURL is the key set of tenant tid for both token versions.
func entraKeysURL(authority, tid string) string {
	return authority + "/" + tid + "/discovery/v2.0/keys"
}

// CheckKeyFiles reads and parses every issuer's jwksFile, as the verifier
// will, and reports each that it could not use (check-config; a serve with
// such a file never becomes ready).
func (c Config) CheckKeyFiles() error {
	var errs []error
	for i, is := range c.Issuers {
		if is.JWKSFile == "" {
			continue
		}
		if _, _, _, err := (&fileSource{path: is.JWKSFile}).fetch(context.Background()); err != nil {
			errs = append(errs, fmt.Errorf("auth.issuers[%d].jwksFile: %w", i, err))
		}
	}
	return errors.Join(errs...)
}
