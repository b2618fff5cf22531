package graph

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// maxPages bounds the pages read for one user (999 objects each).
const maxPages = 50

// maxBody bounds one response body read into memory.
const maxBody = 16 << 20

// client reads memberships from Microsoft Graph.
type client struct {
	http  *http.Client
	base  *url.URL // the endpoint, e.g. https://graph.microsoft.com
	scope string

	mu      sync.Mutex
	cred    azcore.TokenCredential
	newCred func() (azcore.TokenCredential, error) // a fresh credential, when Graph refuses the cached token
}

// newHTTPClient is the transport for Graph and the authority: the
// system's roots plus ca_file, the request timeout.
func newHTTPClient(cfg Config) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: cfg.Timeout}, nil
}

// newCredential builds the token credential: the application's secret,
// or the default chain.
func newCredential(cfg Config, hc *http.Client) (azcore.TokenCredential, error) {
	opts := azcore.ClientOptions{Transport: hc}
	if cfg.AuthorityHost != "" {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: cfg.AuthorityHost}
	}
	if !cfg.ClientSecret.IsZero() {
		cred, err := azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, cfg.ClientSecret.Reveal(), &azidentity.ClientSecretCredentialOptions{
			ClientOptions:            opts,
			DisableInstanceDiscovery: cfg.DisableInstanceDiscovery,
		})
		if err != nil {
			return nil, fmt.Errorf("client secret credential: %w", err)
		}
		return cred, nil
	}
	cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
		ClientOptions:            opts,
		TenantID:                 cfg.TenantID,
		DisableInstanceDiscovery: cfg.DisableInstanceDiscovery,
	})
	if err != nil {
		return nil, fmt.Errorf("default Azure credential: %w", err)
	}
	return cred, nil
}

func newClient(cfg Config, hc *http.Client, newCred func() (azcore.TokenCredential, error)) (*client, error) {
	base, err := url.Parse(strings.TrimRight(cfg.Endpoint, "/"))
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	cred, err := newCred()
	if err != nil {
		return nil, err
	}
	// The resource is the service root: https://graph.microsoft.com/.default.
	return &client{http: hc, cred: cred, newCred: newCred, base: base, scope: base.Scheme + "://" + base.Host + "/.default"}, nil
}

func (c *client) credential() azcore.TokenCredential {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cred
}

// renew replaces the credential, and with it the token it caches: Graph
// refused the token (revoked, or issued before a change to the
// application) although it has not expired.
func (c *client) renew(old azcore.TokenCredential) error {
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

// throttled reports whether the answer asks to come back later (429, 503).
func (e *Error) throttled() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable
}

// errNotFound is a user Graph does not know.
var errNotFound = errors.New("graph: user not found")

// directoryObject is one item of a memberships page.
type directoryObject struct {
	Type        string  `json:"@odata.type"`
	ID          string  `json:"id"`
	DisplayName *string `json:"displayName"`
}

type page struct {
	Value    []directoryObject `json:"value"`
	NextLink string            `json:"@odata.nextLink"`
}

// memberships reads the groups and directory roles user is a member of,
// directly or transitively, following @odata.nextLink. wait is called with
// Graph's Retry-After when it throttles, and decides whether to try again.
func (c *client) memberships(ctx context.Context, user string, wait func(context.Context, time.Duration) bool) (Membership, error) {
	next := c.base.String() + "/v1.0/users/" + url.PathEscape(user) + "/transitiveMemberOf?$select=id,displayName&$top=999"
	var groups, names, roles []string
	for range maxPages {
		p, err := c.getPage(ctx, next, wait)
		if err != nil {
			return Membership{}, err
		}
		for _, o := range p.Value {
			name := ""
			if o.DisplayName != nil {
				name = strings.TrimSpace(*o.DisplayName)
			}
			switch o.Type {
			case "#microsoft.graph.group":
				if id := strings.TrimSpace(o.ID); id != "" {
					groups = append(groups, id)
				}
				if name != "" {
					names = append(names, name)
				}
			case "#microsoft.graph.directoryRole":
				if name != "" {
					roles = append(roles, name)
				}
			}
		}
		if p.NextLink == "" {
			return Membership{GroupIDs: sorted(groups), GroupNames: sorted(names), Roles: sorted(roles), Found: true}, nil
		}
		if next, err = c.sameService(p.NextLink); err != nil {
			return Membership{}, err
		}
	}
	return Membership{}, fmt.Errorf("graph: more than %d pages of memberships", maxPages)
}

// sameService accepts a nextLink only on the endpoint's own scheme and
// host: the bearer token goes nowhere else.
func (c *client) sameService(link string) (string, error) {
	u, err := url.Parse(link)
	if err != nil || !strings.EqualFold(u.Scheme, c.base.Scheme) || !strings.EqualFold(u.Host, c.base.Host) {
		return "", fmt.Errorf("graph: @odata.nextLink %q is not on %s", link, c.base.Host)
	}
	return link, nil
}

// getPage GETs one page, retrying throttled answers as long as wait allows.
func (c *client) getPage(ctx context.Context, link string, wait func(context.Context, time.Duration) bool) (page, error) {
	for {
		p, err := c.get(ctx, link)
		var ge *Error
		if err != nil && errors.As(err, &ge) && ge.throttled() {
			if wait(ctx, ge.RetryAfter) {
				continue
			}
		}
		return p, err
	}
}

// get GETs one page; a 401 gets one more try with a new token.
func (c *client) get(ctx context.Context, link string) (page, error) {
	cred := c.credential()
	p, err := c.getWith(ctx, cred, link)
	var ge *Error
	if errors.As(err, &ge) && ge.Status == http.StatusUnauthorized {
		if rerr := c.renew(cred); rerr != nil {
			return page{}, &Error{Err: fmt.Errorf("token: %w", rerr)}
		}
		return c.getWith(ctx, c.credential(), link)
	}
	return p, err
}

func (c *client) getWith(ctx context.Context, cred azcore.TokenCredential, link string) (page, error) {
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}})
	if err != nil {
		return page{}, &Error{Err: fmt.Errorf("token: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return page{}, &Error{Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sspr-exporter")
	resp, err := c.http.Do(req)
	if err != nil {
		return page{}, &Error{Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return page{}, &Error{Status: resp.StatusCode, Err: fmt.Errorf("read response: %w", err)}
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		var p page
		if err := json.Unmarshal(body, &p); err != nil {
			return page{}, &Error{Status: resp.StatusCode, Err: fmt.Errorf("decode response: %w", err)}
		}
		return p, nil
	case resp.StatusCode == http.StatusNotFound:
		return page{}, errNotFound
	}
	e := &Error{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
	}
	return page{}, e
}

// retryAfter reads a Retry-After value: seconds (Graph sends fractions,
// such as 2.128) or an HTTP date. 0 when absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
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

func sorted(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}
