// Package graphapi is an in-process test double of Microsoft Graph and of
// the Microsoft identity platform token endpoint it takes tokens from, on a
// loopback TLS listener: the OpenID configuration and instance discovery
// documents MSAL reads, client-credentials tokens, a user's memberships
// (transitiveMemberOf and memberOf) and the directory audit log
// (auditLogs/directoryAudits with $filter, $top and $select), paged with
// @odata.nextLink. It answers with the bodies and headers Graph documents,
// and injects faults on demand: 429 with Retry-After, 401, 403, 5xx, slow
// answers.
package graphapi

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Credentials a test registers as the one application the token endpoint
// knows.
const (
	TenantID     = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
	ClientID     = "0d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e"
	ClientSecret = "test-client-secret-value"
	// TenantDomain is a verified domain of the tenant: an authority path
	// may name the tenant by it.
	TenantDomain = "fabrikam.example"
	// IdentityHeader is the secret the managed identity endpoint
	// (/msi/token, App Service's protocol) requires in X-IDENTITY-HEADER.
	IdentityHeader = "test-identity-header"
)

// Group is a group a user is a member of.
type Group struct {
	ID          string
	DisplayName string
	Direct      bool // a direct membership (memberOf lists only these)
}

// Role is an activated directory role a user is a member of.
type Role struct {
	ID             string
	DisplayName    string
	RoleTemplateID string
	Direct         bool
}

// User is a directory user the double knows.
type User struct {
	ID                string
	UserPrincipalName string
	Groups            []Group
	Roles             []Role
}

// Fault is an injected answer for the next Graph requests.
type Fault struct {
	Status     int           // 429, 401, 403, 500, 503...
	RetryAfter string        // Retry-After header value, if any ("2", "0.5")
	Times      int           // how many requests get it; 0 means 1
	Delay      time.Duration // wait this long before answering (the fault or the normal answer when Status is 0)
	// Path, when set, limits the fault to request paths containing it.
	Path string
	// Empty answers a directoryAudits page with no items and an
	// @odata.nextLink to the same place, as Graph may (Status 0).
	Empty bool
}

// Stats counts what the double has seen.
type Stats struct {
	TokenRequests     int
	DiscoveryRequests int // OpenID configuration and instance discovery
	GraphRequests     int // every request under /v1.0 or /beta
	Faults            int // requests answered with an injected fault
	Unauthorized      int // requests refused for a missing or unknown token
}

// Server is a running double. Its methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server

	mu           sync.Mutex
	users        map[string]*User // by lower-cased id and UPN
	audits       []map[string]any
	pageSize     int
	tokens       map[string]time.Time
	tokenTTL     time.Duration
	faults       []Fault
	maxTerms     int
	forbidGraph  bool
	secret       string
	cert         *x509.Certificate // the application's certificate, for client assertions
	federated    string            // the workload identity token the application trusts
	stats        Stats
	requestPaths []string
	requestTimes []time.Time
	release      chan struct{} // closed to let delayed requests finish early
}

// New starts a double; it is closed when the test ends.
func New(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{
		users:    map[string]*User{},
		pageSize: 999,
		tokens:   map[string]time.Time{},
		tokenTTL: time.Hour,
		secret:   ClientSecret,
		release:  make(chan struct{}),
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	tb.Cleanup(s.Close)
	return s
}

// Close stops the double, letting delayed requests finish first.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.release:
	default:
		close(s.release)
	}
	s.mu.Unlock()
	s.srv.Close()
}

// URL is the double's base URL (https://127.0.0.1:port): both the
// authority host and the Graph endpoint.
func (s *Server) URL() string { return s.srv.URL }

// Client is an HTTP client that trusts the double's certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// CAFile writes the double's certificate as PEM into dir and returns the
// file's path, for a ca_file setting.
func (s *Server) CAFile(tb testing.TB, dir string) string {
	tb.Helper()
	p := filepath.Join(dir, "graph-test-ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// CertPool holds the double's certificate.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.srv.Certificate())
	return p
}

// AddUser makes a user known (replacing one with the same id).
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := u
	s.users[strings.ToLower(u.ID)] = &cp
	if u.UserPrincipalName != "" {
		s.users[strings.ToLower(u.UserPrincipalName)] = &cp
	}
}

// AddAudits appends directoryAudit objects (as Graph returns them) to the
// audit log, in order.
func (s *Server) AddAudits(audits ...map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audits = append(s.audits, audits...)
}

// AddDiagnosticRecords appends the entries of diagnostic-setting records
// (one JSON record each, as Event Hubs and archives carry them) to the
// audit log as Graph returns the same entries: their properties object.
// Records of other categories (sign-ins) are not audit entries and are
// left out; it returns how many were added.
func (s *Server) AddDiagnosticRecords(records ...[]byte) (int, error) {
	var audits []map[string]any
	for i, r := range records {
		var rec struct {
			Category   string         `json:"category"`
			Properties map[string]any `json:"properties"`
		}
		if err := json.Unmarshal(r, &rec); err != nil {
			return 0, fmt.Errorf("record %d: %w", i, err)
		}
		if rec.Category == "AuditLogs" && rec.Properties != nil {
			audits = append(audits, rec.Properties)
		}
	}
	s.AddAudits(audits...)
	return len(audits), nil
}

// SetPageSize sets the largest page the double returns (Graph's is 999;
// it may return fewer items than $top asks, and so does the double), and
// the page size of a request without $top (Graph's default is 100).
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = max(1, n)
}

// SetFilterLimit bounds the comparisons one directoryAudits $filter may
// hold (0: no bound); a longer one is refused with 400.
func (s *Server) SetFilterLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxTerms = n
}

// Inject queues a fault for the next matching Graph requests.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Times <= 0 {
		f.Times = 1
	}
	s.faults = append(s.faults, f)
}

// Forbid makes every Graph request fail with 403 Authorization_RequestDenied
// (the application lacks the permission) until called with false.
func (s *Server) Forbid(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forbidGraph = on
}

// RevokeTokens forgets every issued token: Graph then answers 401 until a
// new token is fetched.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// SetClientCertificate registers the application's certificate: the token
// endpoint then accepts client assertions signed with its key.
func (s *Server) SetClientCertificate(c *x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cert = c
}

// SetFederatedToken registers the token of a federated identity
// credential (workload identity): the token endpoint then accepts it as
// the client assertion.
func (s *Server) SetFederatedToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.federated = tok
}

// SetClientSecret changes the secret the token endpoint accepts.
func (s *Server) SetClientSecret(secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secret = secret
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Paths returns the path and query of every Graph request so far, in order.
func (s *Server) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requestPaths)
}

// Times returns when each Graph request of Paths arrived.
func (s *Server) Times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requestTimes)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/common/discovery/instance":
		s.instanceDiscovery(w, r)
	case strings.HasSuffix(p, "/v2.0/.well-known/openid-configuration"):
		s.openIDConfiguration(w, r)
	case strings.HasSuffix(p, "/oauth2/v2.0/token"):
		s.token(w, r)
	case p == "/msi/token":
		s.managedIdentity(w, r)
	case strings.HasPrefix(p, "/v1.0/") || strings.HasPrefix(p, "/beta/"):
		s.graph(w, r)
	default:
		http.NotFound(w, r)
	}
}

// tenantOf returns the first path segment (the tenant of an authority
// path) and whether the double serves it.
func tenantOf(path string) (string, bool) {
	seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return seg, strings.EqualFold(seg, TenantID) || strings.EqualFold(seg, TenantDomain) || seg == "organizations" || seg == "common"
}

// instanceDiscovery answers MSAL's authority validation as
// login.microsoftonline.com/common/discovery/instance does, naming this
// host as the only alias.
func (s *Server) instanceDiscovery(w http.ResponseWriter, r *http.Request) {
	s.count(func(st *Stats) { st.DiscoveryRequests++ })
	auth, err := url.Parse(r.URL.Query().Get("authorization_endpoint"))
	if err != nil || auth.Host == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"error":             "invalid_instance",
			"error_description": "AADSTS50049: Unknown or invalid instance.",
			"error_codes":       []int{50049},
		})
		return
	}
	tenant, _ := tenantOf(auth.Path)
	host := r.Host
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": "https://" + host + "/" + tenant + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata": []map[string]any{{
			"preferred_network": host,
			"preferred_cache":   host,
			"aliases":           []string{host},
		}},
	})
}

// openIDConfiguration is the tenant's OpenID Provider metadata, the
// fields MSAL reads (authorization, token and issuer) with the others a
// v2.0 document carries.
func (s *Server) openIDConfiguration(w http.ResponseWriter, r *http.Request) {
	s.count(func(st *Stats) { st.DiscoveryRequests++ })
	tenant, ok := tenantOf(r.URL.Path)
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"error":             "invalid_tenant",
			"error_description": fmt.Sprintf("AADSTS90002: Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant),
			"error_codes":       []int{90002},
		})
		return
	}
	base := "https://" + r.Host + "/" + tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/v2.0",
		"request_uri_parameter_supported":       false,
		"userinfo_endpoint":                     "https://" + r.Host + "/oidc/userinfo",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "microsoftonline.com",
	})
}

// token is the client-credentials grant of the v2.0 token endpoint.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.count(func(st *Stats) { st.TokenRequests++ })
	if r.Method != http.MethodPost {
		tokenError(w, http.StatusMethodNotAllowed, "invalid_request", 900561, "AADSTS900561: The endpoint only accepts POST requests.")
		return
	}
	if _, ok := tenantOf(r.URL.Path); !ok {
		tokenError(w, http.StatusBadRequest, "invalid_tenant", 90002, "AADSTS90002: Tenant not found.")
		return
	}
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", 900144, "AADSTS900144: The request body must contain the following parameter: 'grant_type'.")
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "client_credentials" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "AADSTS70003: The app requested an unsupported grant type.")
		return
	}
	// MSAL adds openid, profile and offline_access to the resource's scope.
	if !slices.ContainsFunc(strings.Fields(f.Get("scope")), func(sc string) bool { return strings.HasSuffix(sc, "/.default") }) {
		tokenError(w, http.StatusBadRequest, "invalid_scope", 1002012, "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
		return
	}
	s.mu.Lock()
	secret := s.secret
	s.mu.Unlock()
	if f.Get("client_id") != ClientID {
		tokenError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory.", f.Get("client_id")))
		return
	}
	if a := f.Get("client_assertion"); a != "" || f.Get("client_assertion_type") != "" {
		if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			tokenError(w, http.StatusBadRequest, "invalid_request", 50027, "AADSTS50027: JWT token is invalid or malformed.")
			return
		}
		if err := s.checkAssertion(a); err != nil {
			tokenError(w, http.StatusUnauthorized, "invalid_client", 700027, "AADSTS700027: Client assertion failed signature validation: "+err.Error())
			return
		}
	} else if f.Get("client_secret") != secret {
		tokenError(w, http.StatusUnauthorized, "invalid_client", 7000215, "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+ClientID+"'.")
		return
	}
	tok, ttl := s.issue(f.Get("scope"))
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     ttl,
		"ext_expires_in": ttl,
		"access_token":   tok,
	})
}

// issue records a new token for scope and returns it with its lifetime
// in seconds.
func (s *Server) issue(scope string) (string, int) {
	tok := accessToken(scope)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[tok] = time.Now().Add(s.tokenTTL)
	return tok, int(s.tokenTTL.Seconds())
}

// checkAssertion accepts the registered federated token, or a JWT the
// application signed with its certificate's key (RS256 or PS256) naming
// itself as issuer and subject.
func (s *Server) checkAssertion(a string) error {
	s.mu.Lock()
	cert, federated := s.cert, s.federated
	s.mu.Unlock()
	if federated != "" && a == federated {
		return nil
	}
	parts := strings.Split(a, ".")
	if len(parts) != 3 || cert == nil {
		return errors.New("no certificate or federated credential matches")
	}
	var head struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss, Sub string
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil || json.Unmarshal(hb, &head) != nil || json.Unmarshal(cb, &claims) != nil {
		return errors.New("malformed")
	}
	if claims.Iss != ClientID || claims.Sub != ClientID {
		return errors.New("issuer or subject is not the application")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return errors.New("not an RSA certificate")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch head.Alg {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
	case "PS256":
		return rsa.VerifyPSS(pub, crypto.SHA256, sum[:], sig, nil)
	}
	return fmt.Errorf("algorithm %q", head.Alg)
}

// managedIdentity is App Service's managed identity endpoint
// (IDENTITY_ENDPOINT, IDENTITY_HEADER): a token for ?resource=.
func (s *Server) managedIdentity(w http.ResponseWriter, r *http.Request) {
	s.count(func(st *Stats) { st.TokenRequests++ })
	if r.Header.Get("X-IDENTITY-HEADER") != IdentityHeader {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"statusCode": 401, "message": "Unauthorized request"})
		return
	}
	res := r.URL.Query().Get("resource")
	if res == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "message": "resource is required"})
		return
	}
	tok, ttl := s.issue(strings.TrimSuffix(res, "/") + "/.default")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "expires_on": strconv.FormatInt(time.Now().Add(time.Duration(ttl)*time.Second).Unix(), 10),
		"resource": res, "token_type": "Bearer", "client_id": ClientID,
	})
}

// accessToken is shaped like the authority's: a JWT whose claims name the
// tenant (tid) and the resource (aud), with a unique id; the signature is
// not one (nothing verifies it).
func accessToken(scope string) string {
	aud := ""
	for _, sc := range strings.Fields(scope) {
		if r, ok := strings.CutSuffix(sc, "/.default"); ok {
			aud = r
		}
	}
	claims, _ := json.Marshal(map[string]any{"aud": aud, "tid": TenantID, "appid": ClientID, "jti": randomHex(16)})
	return "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(claims) + ".c2ln"
}

func tokenError(w http.ResponseWriter, status int, code string, aadsts int, desc string) {
	trace, corr := uuid(), uuid()
	ts := time.Now().UTC().Format("2006-01-02 15:04:05Z")
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": desc + "\r\nTrace ID: " + trace + "\r\nCorrelation ID: " + corr + "\r\nTimestamp: " + ts,
		"error_codes":       []int{aadsts},
		"timestamp":         ts,
		"trace_id":          trace,
		"correlation_id":    corr,
		"error_uri":         "https://login.microsoftonline.com/error?code=" + strconv.Itoa(aadsts),
	})
}

// graph serves the Graph API paths after authentication and faults.
func (s *Server) graph(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.GraphRequests++
	s.requestPaths = append(s.requestPaths, r.URL.RequestURI())
	s.requestTimes = append(s.requestTimes, time.Now())
	s.mu.Unlock()

	if !s.authorized(w, r) {
		return
	}
	empty := false
	if f, ok := s.takeFault(r.URL.Path); ok {
		s.count(func(st *Stats) { st.Faults++ })
		if !s.wait(r, f.Delay) {
			return
		}
		if f.Status != 0 {
			s.fault(w, r, f)
			return
		}
		empty = f.Empty
	}
	s.mu.Lock()
	forbid := s.forbidGraph
	s.mu.Unlock()
	if forbid {
		graphError(w, r, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return
	}
	if r.Method != http.MethodGet {
		graphError(w, r, http.StatusMethodNotAllowed, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
		return
	}
	version, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 3 && parts[0] == "users" && (parts[2] == "transitiveMemberOf" || parts[2] == "memberOf"):
		s.memberships(w, r, version, parts[1], parts[2] == "transitiveMemberOf")
	case len(parts) == 2 && parts[0] == "auditLogs" && parts[1] == "directoryAudits":
		s.directoryAudits(w, r, version, empty)
	default:
		graphError(w, r, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", parts[len(parts)-1]))
	}
}

// wait sleeps d, or less when the server closes; false when the client
// went away.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.release:
		return true
	case <-r.Context().Done():
		return false
	}
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	s.mu.Lock()
	exp, known := s.tokens[tok]
	s.mu.Unlock()
	var msg string
	switch {
	case !ok || tok == "":
		msg = "Access token is empty."
	case !known:
		msg = "Access token validation failure. Invalid audience."
	case time.Now().After(exp):
		msg = "Lifetime validation failed, the token is expired."
	default:
		return true
	}
	s.count(func(st *Stats) { st.Unauthorized++ })
	w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
	graphError(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", msg)
	return false
}

func (s *Server) takeFault(path string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults {
		f := &s.faults[i]
		if f.Path != "" && !strings.Contains(path, f.Path) {
			continue
		}
		got := *f
		f.Times--
		if f.Times == 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		return got, true
	}
	return Fault{}, false
}

func (s *Server) fault(w http.ResponseWriter, r *http.Request, f Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	switch f.Status {
	case http.StatusTooManyRequests:
		// The body of the throttling guidance's sample response.
		writeJSON(w, f.Status, map[string]any{"error": map[string]any{
			"code":    "TooManyRequests",
			"message": "Please retry again later.",
			"innerError": map[string]any{
				"code":       "429",
				"date":       time.Now().UTC().Format("2006-01-02T15:04:05"),
				"message":    "Please retry after",
				"request-id": uuid(),
				"status":     "429",
			},
		}})
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
		graphError(w, r, f.Status, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
	case http.StatusForbidden:
		graphError(w, r, f.Status, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
	case http.StatusServiceUnavailable:
		graphError(w, r, f.Status, "serviceNotAvailable", "The service is temporarily unavailable. Please retry after the time in the Retry-After header.")
	default:
		graphError(w, r, f.Status, "generalException", "An unspecified error has occurred.")
	}
}

// graphError writes Graph's error body: {"error":{"code","message",
// "innerError":{"date","request-id","client-request-id"}}}.
func graphError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	reqID := uuid()
	inner := map[string]any{"date": time.Now().UTC().Format("2006-01-02T15:04:05"), "request-id": reqID}
	if c := r.Header.Get("client-request-id"); c != "" {
		inner["client-request-id"] = c
	} else {
		inner["client-request-id"] = reqID
	}
	w.Header().Set("request-id", reqID)
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": message, "innerError": inner}})
}

// memberships lists a user's groups and directory roles as
// directoryObjects with their @odata.type, honouring $select and $top and
// paging with @odata.nextLink ($skiptoken).
func (s *Server) memberships(w http.ResponseWriter, r *http.Request, version, who string, transitive bool) {
	key, err := url.PathUnescape(who)
	if err != nil {
		key = who
	}
	s.mu.Lock()
	u := s.users[strings.ToLower(key)]
	var items []map[string]any
	if u != nil {
		for _, g := range u.Groups {
			if transitive || g.Direct {
				items = append(items, map[string]any{
					"@odata.type": "#microsoft.graph.group", "id": g.ID, "displayName": nullable(g.DisplayName),
					"securityEnabled": true, "mailEnabled": false, "groupTypes": []string{},
				})
			}
		}
		for _, ro := range u.Roles {
			if transitive || ro.Direct {
				items = append(items, map[string]any{
					"@odata.type": "#microsoft.graph.directoryRole", "id": ro.ID, "displayName": nullable(ro.DisplayName),
					"roleTemplateId": ro.RoleTemplateID, "description": nil,
				})
			}
		}
	}
	s.mu.Unlock()
	if u == nil {
		graphError(w, r, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", key))
		return
	}
	s.page(w, r, items, "https://graph.microsoft.com/"+version+"/$metadata#directoryObjects", true)
}

// directoryAudits lists the audit log, filtered by $filter (with the
// properties and operators the resource supports), in the order added.
// empty answers a page of no items that links to the same place.
func (s *Server) directoryAudits(w http.ResponseWriter, r *http.Request, version string, empty bool) {
	q := r.URL.Query()
	var pred func(map[string]any) bool
	s.mu.Lock()
	maxTerms := s.maxTerms
	s.mu.Unlock()
	if f := q.Get("$filter"); f != "" {
		p, err := parseFilter(f, allowDirectoryAudits, maxTerms)
		if err != nil {
			graphError(w, r, http.StatusBadRequest, "BadRequest", "Invalid filter clause: "+err.Error())
			return
		}
		pred = p
	}
	s.mu.Lock()
	var items []map[string]any
	for _, a := range s.audits {
		if pred == nil || pred(a) {
			items = append(items, a)
		}
	}
	s.mu.Unlock()
	if empty {
		next := *r.URL
		next.Scheme, next.Host = "https", r.Host
		writeJSON(w, http.StatusOK, map[string]any{
			"@odata.context":  "https://graph.microsoft.com/" + version + "/$metadata#auditLogs/directoryAudits",
			"value":           []any{},
			"@odata.nextLink": next.String(),
		})
		return
	}
	s.page(w, r, items, "https://graph.microsoft.com/"+version+"/$metadata#auditLogs/directoryAudits", false)
}

// page writes one page of items: $select keeps the named properties (and
// @odata.type when typed), $top (or the page size) bounds the page and
// $skiptoken says where it starts; @odata.nextLink carries the rest of the
// query.
func (s *Server) page(w http.ResponseWriter, r *http.Request, items []map[string]any, context string, typed bool) {
	q := r.URL.Query()
	s.mu.Lock()
	limit := s.pageSize
	s.mu.Unlock()
	size := min(100, limit)
	if t := q.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > 999 {
			graphError(w, r, http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf("Invalid page size specified: '%s'. Must be between 1 and 999 inclusive.", t))
			return
		}
		size = min(n, limit)
	}
	start := 0
	if tok := q.Get("$skiptoken"); tok != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(tok, "X"))
		if err != nil || n < 0 || n > len(items) {
			graphError(w, r, http.StatusBadRequest, "Request_BadRequest", "Invalid value for $skiptoken.")
			return
		}
		start = n
	}
	end := min(len(items), start+size)
	var sel []string
	if v := q.Get("$select"); v != "" {
		sel = strings.Split(v, ",")
	}
	value := make([]map[string]any, 0, end-start)
	for _, it := range items[start:end] {
		value = append(value, project(it, sel, typed))
	}
	body := map[string]any{"@odata.context": context, "value": value}
	if end < len(items) {
		next := *r.URL
		next.Scheme, next.Host = "https", r.Host
		nq := next.Query()
		nq.Set("$skiptoken", "X"+strconv.Itoa(end))
		next.RawQuery = nq.Encode()
		body["@odata.nextLink"] = next.String()
	}
	writeJSON(w, http.StatusOK, body)
}

func project(it map[string]any, sel []string, typed bool) map[string]any {
	if len(sel) == 0 {
		return it
	}
	out := map[string]any{}
	if typed {
		out["@odata.type"] = it["@odata.type"]
	}
	for _, k := range sel {
		k = strings.TrimSpace(k)
		if v, ok := it[k]; ok {
			out[k] = v
		} else {
			out[k] = nil
		}
	}
	return out
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func uuid() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
