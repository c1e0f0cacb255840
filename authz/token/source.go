package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// maxDocumentSize bounds a JWKS or discovery document read from the
	// network or a file: real ones are a few KiB.
	maxDocumentSize = 1 << 20
	// fetchTimeout bounds one key set fetch, discovery included.
	fetchTimeout = 15 * time.Second
	// noMaxAge says a response carried no usable Cache-Control max-age.
	noMaxAge time.Duration = -1
)

// keySource obtains an issuer's key set. Sources only ever contact URLs from
// the configuration (or the configured issuer's discovery document), never
// anything named by a token (SPEC 2.1).
type keySource interface {
	// fetch returns the parsed key set, the Cache-Control max-age of the
	// response (noMaxAge when absent) and the keys it skipped.
	fetch(ctx context.Context) (*keySet, time.Duration, []skippedKey, error)
	// String names the source in logs.
	String() string
}

// newHTTPClient is the default client: bounded timeouts, its own transport
// (no shared global state), and redirects only to the same or a stronger
// scheme.
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout: fetchTimeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("more than 3 redirects")
			}
			if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return errors.New("redirect from https to " + req.URL.Scheme)
			}
			return nil
		},
	}
}

// getDocument GETs a JSON document and returns its body and Cache-Control
// max-age.
func getDocument(ctx context.Context, client *http.Client, u string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, noMaxAge, fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, noMaxAge, err // *url.Error names the method and URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDocumentSize))
		return nil, noMaxAge, fmt.Errorf("GET %s: status %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentSize+1))
	if err != nil {
		return nil, noMaxAge, fmt.Errorf("GET %s: read body: %w", u, err)
	}
	if len(body) > maxDocumentSize {
		return nil, noMaxAge, fmt.Errorf("GET %s: document larger than %d bytes", u, maxDocumentSize)
	}
	return body, maxAge(resp.Header.Values("Cache-Control")), nil
}

// maxAge reads the max-age directive of Cache-Control header values;
// no-store and no-cache count as 0 (refetch as soon as allowed).
func maxAge(values []string) time.Duration {
	age := noMaxAge
	for _, v := range values {
		for _, d := range strings.Split(v, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return 0
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(arg, `"`), 10, 64)
				if err != nil || n < 0 {
					continue
				}
				if n > int64(365*24*time.Hour/time.Second) {
					n = int64(365 * 24 * time.Hour / time.Second)
				}
				age = time.Duration(n) * time.Second
			}
		}
	}
	return age
}

// jwksURLSource fetches a configured JWKS URL; Entra tenants use it with
// {authority}/{tid}/discovery/v2.0/keys.
type jwksURLSource struct {
	client *http.Client
	url    string
}

func (s *jwksURLSource) String() string { return s.url }

func (s *jwksURLSource) fetch(ctx context.Context) (*keySet, time.Duration, []skippedKey, error) {
	body, age, err := getDocument(ctx, s.client, s.url)
	if err != nil {
		return nil, noMaxAge, nil, err
	}
	ks, skipped, err := parseKeySet(body)
	if err != nil {
		return nil, noMaxAge, skipped, fmt.Errorf("%s: %w", s.url, err)
	}
	return ks, age, skipped, nil
}

// discoverySource reads jwks_uri from the issuer's OIDC discovery document
// and then fetches that JWKS. The jwks_uri is kept until a JWKS fetch
// fails, so a refresh costs one request.
type discoverySource struct {
	client *http.Client
	issuer string

	mu      sync.Mutex
	jwksURI string
}

func (s *discoverySource) String() string { return s.issuer }

func (s *discoverySource) fetch(ctx context.Context) (*keySet, time.Duration, []skippedKey, error) {
	s.mu.Lock()
	uri := s.jwksURI
	s.mu.Unlock()
	if uri == "" {
		var err error
		if uri, err = s.discover(ctx); err != nil {
			return nil, noMaxAge, nil, err
		}
	}
	ks, age, skipped, err := (&jwksURLSource{client: s.client, url: uri}).fetch(ctx)
	s.mu.Lock()
	if err != nil {
		s.jwksURI = "" // the document may have moved it: rediscover next time
	} else {
		s.jwksURI = uri
	}
	s.mu.Unlock()
	return ks, age, skipped, err
}

// discover fetches {issuer}/.well-known/openid-configuration. Its issuer must
// equal the configured one (OpenID Connect Discovery 1.0 4.3), and an https
// issuer may not send the key fetch over plain http.
func (s *discoverySource) discover(ctx context.Context) (string, error) {
	u := strings.TrimRight(s.issuer, "/") + "/.well-known/openid-configuration"
	body, _, err := getDocument(ctx, s.client, u)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery %s: %w", u, err)
	}
	if doc.Issuer != s.issuer {
		return "", fmt.Errorf("discovery %s: issuer %q differs from the configured issuer", u, truncate(doc.Issuer))
	}
	if err := checkHTTPURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("discovery %s: jwks_uri: %w", u, err)
	}
	if ju, _ := url.Parse(doc.JWKSURI); strings.HasPrefix(s.issuer, "https:") && ju.Scheme != "https" {
		return "", fmt.Errorf("discovery %s: jwks_uri %q is not https", u, doc.JWKSURI)
	}
	return doc.JWKSURI, nil
}

// fileSource reads a local JWKS or PEM file at every fetch, so rotating
// the file needs no restart.
type fileSource struct {
	path string
}

func (s *fileSource) String() string { return s.path }

func (s *fileSource) fetch(context.Context) (*keySet, time.Duration, []skippedKey, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, noMaxAge, nil, err
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, maxDocumentSize+1))
	if err != nil {
		return nil, noMaxAge, nil, fmt.Errorf("read %s: %w", s.path, err)
	}
	if len(body) > maxDocumentSize {
		return nil, noMaxAge, nil, fmt.Errorf("%s: larger than %d bytes", s.path, maxDocumentSize)
	}
	ks, skipped, err := parseKeySet(body)
	if err != nil {
		return nil, noMaxAge, skipped, fmt.Errorf("%s: %w", s.path, err)
	}
	return ks, noMaxAge, skipped, nil
}
