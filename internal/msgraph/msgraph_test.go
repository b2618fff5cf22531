package msgraph

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/sspr-exporter/sspr-exporter/internal/testserver/graphapi"
)

func newClient(t *testing.T, s *graphapi.Server) *Client {
	t.Helper()
	newCred := func() (azcore.TokenCredential, error) {
		return azidentity.NewClientSecretCredential(graphapi.TenantID, graphapi.ClientID, graphapi.ClientSecret, &azidentity.ClientSecretCredentialOptions{
			ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: s.URL()}, Transport: s.Client(), Retry: policy.RetryOptions{MaxRetries: -1}},
			DisableInstanceDiscovery: true,
		})
	}
	c, err := New(s.URL(), s.Client(), newCred)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNextLinkElsewhereRefused(t *testing.T) {
	c := &Client{base: mustParse(t, "https://graph.microsoft.com")}
	for link, ok := range map[string]bool{
		"https://graph.microsoft.com/v1.0/users/x/transitiveMemberOf?$skiptoken=1": true,
		"https://GRAPH.microsoft.com/v1.0/x":                                       true,
		"http://graph.microsoft.com/v1.0/x":                                        false,
		"https://graph.microsoft.com.evil.example/v1.0/x":                          false,
		"https://evil.example/v1.0/x":                                              false,
		"nextLink":                                                                 false,
	} {
		if err := c.SameService(link); (err == nil) != ok {
			t.Errorf("%s: err %v, want accepted %v", link, err, ok)
		}
	}
}

func TestRetryAfterValues(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"10":                            10 * time.Second,
		"2.128":                         2128 * time.Millisecond,
		"0":                             0,
		"-3":                            0,
		"soon":                          0,
		"Sun, 01 Mar 2026 12:00:30 GMT": 30 * time.Second,
		"Sun, 01 Mar 2026 11:00:00 GMT": 0,
		"1e12":                          24 * time.Hour,
	} {
		if got := RetryAfter(v, now); got != want {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
}

// TestErrorsOfTheDouble: Graph's error bodies become *Error with code,
// message and Retry-After; a revoked token is renewed once.
func TestErrorsOfTheDouble(t *testing.T) {
	s := graphapi.New(t)
	c := newClient(t, s)
	link := c.URL("/v1.0/auditLogs/directoryAudits")
	if _, err := c.Get(context.Background(), link); err != nil {
		t.Fatalf("first GET: %v", err)
	}
	s.Inject(graphapi.Fault{Status: http.StatusTooManyRequests, RetryAfter: "3"})
	_, err := c.Get(context.Background(), link)
	var ge *Error
	if !errors.As(err, &ge) || ge.Status != 429 || ge.RetryAfter != 3*time.Second || !ge.Throttled() || !ge.Transient() || ge.Code != "TooManyRequests" {
		t.Errorf("429: %#v", err)
	}
	s.Forbid(true)
	_, err = c.Get(context.Background(), link)
	if !errors.As(err, &ge) || ge.Status != 403 || ge.Code != "Authorization_RequestDenied" || ge.Transient() {
		t.Errorf("403: %#v", err)
	}
	s.Forbid(false)
	s.RevokeTokens()
	if _, err := c.Get(context.Background(), link); err != nil {
		t.Errorf("after revocation: %v, want a new token and success", err)
	}
	if st := s.Stats(); st.TokenRequests != 2 {
		t.Errorf("%d token requests, want 2", st.TokenRequests)
	}
}

// TestTokenRefusedIsNotTransient: a wrong secret is refused by the
// authority; trying again cannot help, and the secret is not in the error.
func TestTokenRefusedIsNotTransient(t *testing.T) {
	s := graphapi.New(t)
	s.SetClientSecret("another")
	c := newClient(t, s)
	_, err := c.Get(context.Background(), c.URL("/v1.0/auditLogs/directoryAudits"))
	var ge *Error
	if !errors.As(err, &ge) || ge.Transient() {
		t.Fatalf("wrong secret: %v, want a permanent *Error", err)
	}
	if strings.Contains(err.Error(), graphapi.ClientSecret) {
		t.Error("the error carries the secret")
	}
}

func TestTenantOfToken(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	for tok, want := range map[string]string{
		"eyJ0eXAiOiJKV1QifQ." + enc([]byte(`{"tid":"6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f","aud":"x"}`)) + ".sig": "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
		"eyJ0eXAiOiJKV1QifQ." + enc([]byte(`{"aud":"x"}`)) + ".sig":                                              "",
		"opaque-token": "",
		"a.!!!.c":      "",
	} {
		if got := TenantOfToken(tok); got != want {
			t.Errorf("%q: %q, want %q", tok, got, want)
		}
	}
}

// TestTenantFromTheDouble: the double's tokens carry the tenant as a real
// authority's do.
func TestTenantFromTheDouble(t *testing.T) {
	s := graphapi.New(t)
	tok, err := newClient(t, s).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := TenantOfToken(tok); got != graphapi.TenantID {
		t.Errorf("tid %q, want %q", got, graphapi.TenantID)
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
