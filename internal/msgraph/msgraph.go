// Package msgraph is the exporter's Microsoft Graph client: GET requests
// with a bearer token from an azidentity credential, a fresh credential
// when Graph refuses a cached token, Graph's error bodies and Retry-After
// read into an *Error, @odata.nextLink accepted only on the service's own
// host, and the tenant read from the token.
package msgraph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// DefaultEndpoint is the public cloud's Graph service root.
const DefaultEndpoint = "https://graph.microsoft.com"

// MaxBody bounds one response body read into memory.
const MaxBody = 64 << 20

// Client sends GET requests to one Graph service root.
type Client struct {
	http  *http.Client
	base  *url.URL // the service root, e.g. https://graph.microsoft.com
	scope string

	mu      sync.Mutex
	cred    azcore.TokenCredential
	newCred func() (azcore.TokenCredential, error) // a fresh credential, when Graph refuses the cached token
}

// New returns a client of the service root endpoint. newCred is called
// now, and again whenever Graph refuses a token that has not expired.
func New(endpoint string, hc *http.Client, newCred func() (azcore.TokenCredential, error)) (*Client, error) {
	base, err := url.Parse(strings.TrimRight(endpoint, "/"))
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("endpoint: %q is not a URL like https://graph.microsoft.com", endpoint)
	}
	cred, err := newCred()
	if err != nil {
		return nil, err
	}
	// The resource is the service root: https://graph.microsoft.com/.default.
	return &Client{http: hc, cred: cred, newCred: newCred, base: base, scope: base.Scheme + "://" + base.Host + "/.default"}, nil
}

// URL is the service root followed by path (which starts with '/').
func (c *Client) URL(path string) string { return c.base.String() + path }

func (c *Client) credential() azcore.TokenCredential {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cred
}

// renew replaces the credential, and with it the token it caches: Graph
// refused the token (revoked, or issued before a change to the
// application) although it has not expired.
func (c *Client) renew(old azcore.TokenCredential) error {
	cred, err := c.newCred()
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.cred == old {
		c.cred = cred
	}
	c.mu.Unlock()
	return nil
}

// Error is a failed Graph (or token) request.
type Error struct {
	Status     int           // HTTP status; 0 when no answer came
	Code       string        // Graph's error code (Authorization_RequestDenied...)
	Message    string        // Graph's message
	RetryAfter time.Duration // the wait Graph asked for, if any
	Err        error         // the transport or token error, if any
}

func (e *Error) Error() string {
	switch {
	case e.Err != nil:
		return "graph: " + e.Err.Error()
	case e.Code != "":
		return fmt.Sprintf("graph: HTTP %d %s: %s", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("graph: HTTP %d", e.Status)
}

func (e *Error) Unwrap() error { return e.Err }

// Throttled reports whether the answer asks to come back later (429, 503).
func (e *Error) Throttled() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable
}

// Transient reports whether trying again may succeed: throttling, a
// server error, no answer at all; not a token request the authority
// answered with a refusal (a wrong secret, an unknown application).
func (e *Error) Transient() bool {
	if e.Throttled() || e.Status >= 500 || e.Status == http.StatusRequestTimeout {
		return true
	}
	if e.Status != 0 || e.Err == nil {
		return false
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(e.Err, &afe) && afe.RawResponse != nil {
		return afe.RawResponse.StatusCode >= 500 || afe.RawResponse.StatusCode == http.StatusTooManyRequests
	}
	return true
}

// SameService accepts a link (an @odata.nextLink) only on the service
// root's scheme and host: the bearer token goes nowhere else.
func (c *Client) SameService(link string) error {
	u, err := url.Parse(link)
	if err != nil || !strings.EqualFold(u.Scheme, c.base.Scheme) || !strings.EqualFold(u.Host, c.base.Host) {
		return fmt.Errorf("graph: @odata.nextLink %q is not on %s", link, c.base.Host)
	}
	return nil
}

// Get GETs link and returns the body of a 200 answer; any other answer is
// an *Error. A 401 gets one more try with a new credential.
func (c *Client) Get(ctx context.Context, link string) ([]byte, error) {
	cred := c.credential()
	body, err := c.getWith(ctx, cred, link)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusUnauthorized {
		if rerr := c.renew(cred); rerr != nil {
			return nil, &Error{Err: fmt.Errorf("token: %w", rerr)}
		}
		return c.getWith(ctx, c.credential(), link)
	}
	return body, err
}

// Token returns a token for the service (the credential caches it).
func (c *Client) Token(ctx context.Context) (string, error) {
	tok, err := c.credential().GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}})
	if err != nil {
		return "", &Error{Err: fmt.Errorf("token: %w", secret.RedactError(err))}
	}
	return tok.Token, nil
}

func (c *Client) getWith(ctx context.Context, cred azcore.TokenCredential, link string) ([]byte, error) {
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}})
	if err != nil {
		return nil, &Error{Err: fmt.Errorf("token: %w", secret.RedactError(err))}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return nil, &Error{Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sspr-exporter")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &Error{Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return nil, &Error{Status: resp.StatusCode, Err: fmt.Errorf("read response: %w", err)}
	}
	if resp.StatusCode == http.StatusOK {
		return body, nil
	}
	e := &Error{Status: resp.StatusCode, RetryAfter: RetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
	}
	return nil, e
}

// RetryAfter reads a Retry-After value: seconds (Graph sends fractions,
// such as 2.128) or an HTTP date. 0 when absent or unreadable.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 || math.IsNaN(s) || math.IsInf(s, 0) {
			return 0
		}
		return time.Duration(math.Min(s, 24*3600) * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// TenantOfToken returns the tid claim of a JWT access token, or "" when
// the token is not a JWT or has none. The token is not verified: the
// claim only names the tenant the authority issued it for.
func TenantOfToken(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var claims struct {
		TID string `json:"tid"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.TID
}
