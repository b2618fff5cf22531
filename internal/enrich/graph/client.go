package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/sspr-exporter/sspr-exporter/internal/azcred"
	"github.com/sspr-exporter/sspr-exporter/internal/msgraph"
)

// maxPages bounds the pages read for one user (999 objects each).
const maxPages = 50

// Error is a failed Graph (or token) request.
type Error = msgraph.Error

// client reads memberships from Microsoft Graph.
type client struct {
	graph *msgraph.Client
}

// newHTTPClient is the transport for Graph and the authority: the
// system's roots plus ca_file, the request timeout.
func newHTTPClient(cfg Config) (*http.Client, error) {
	return azcred.HTTPClient(cfg.CAFile, cfg.Timeout)
}

// credentialOptions are the section's credential settings: the
// application's secret, or the default chain.
func credentialOptions(cfg Config) azcred.Options {
	o := azcred.Options{
		Kind:                     azcred.KindDefault,
		TenantID:                 cfg.TenantID,
		AuthorityHost:            cfg.AuthorityHost,
		DisableInstanceDiscovery: cfg.DisableInstanceDiscovery,
	}
	if !cfg.ClientSecret.IsZero() {
		o.Kind, o.ClientID, o.ClientSecret = azcred.KindClientSecret, cfg.ClientID, cfg.ClientSecret
	}
	return o
}

// newCredential builds the token credential: the application's secret,
// or the default chain.
func newCredential(cfg Config, hc *http.Client) (azcore.TokenCredential, error) {
	return azcred.New(credentialOptions(cfg), hc)
}

func newClient(cfg Config, hc *http.Client, newCred func() (azcore.TokenCredential, error)) (*client, error) {
	g, err := msgraph.New(cfg.Endpoint, hc, newCred)
	if err != nil {
		return nil, err
	}
	return &client{graph: g}, nil
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
	next := c.graph.URL("/v1.0/users/" + url.PathEscape(user) + "/transitiveMemberOf?$select=id,displayName&$top=999")
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
		if err := c.graph.SameService(p.NextLink); err != nil {
			return Membership{}, err
		}
		next = p.NextLink
	}
	return Membership{}, fmt.Errorf("graph: more than %d pages of memberships", maxPages)
}

// getPage GETs one page, retrying throttled answers as long as wait allows.
func (c *client) getPage(ctx context.Context, link string, wait func(context.Context, time.Duration) bool) (page, error) {
	for {
		p, err := c.get(ctx, link)
		var ge *Error
		if err != nil && errors.As(err, &ge) && ge.Throttled() {
			if wait(ctx, ge.RetryAfter) {
				continue
			}
		}
		return p, err
	}
}

// get GETs and decodes one page; 404 is a user Graph does not know.
func (c *client) get(ctx context.Context, link string) (page, error) {
	body, err := c.graph.Get(ctx, link)
	var ge *Error
	if errors.As(err, &ge) && ge.Status == http.StatusNotFound {
		return page{}, errNotFound
	}
	if err != nil {
		return page{}, err
	}
	var p page
	if err := json.Unmarshal(body, &p); err != nil {
		return page{}, &Error{Status: http.StatusOK, Err: fmt.Errorf("decode response: %w", err)}
	}
	return p, nil
}

func sorted(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}
