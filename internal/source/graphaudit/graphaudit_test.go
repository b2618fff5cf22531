package graphaudit

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/azcred"
	"github.com/sspr-exporter/sspr-exporter/internal/backfill"
	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/graphapi"
)

func testConfig(t *testing.T, s *graphapi.Server) Config {
	t.Helper()
	c := DefaultConfig()
	c.Options = azcred.Options{
		TenantID: graphapi.TenantID, ClientID: graphapi.ClientID, ClientSecret: secret.New(graphapi.ClientSecret),
		AuthorityHost: s.URL(), DisableInstanceDiscovery: true,
	}
	c.Endpoint = s.URL()
	c.CAFile = s.CAFile(t, t.TempDir())
	c.RequestInterval = 0
	c.Retry = retry.Config{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	c.Timeout = 10 * time.Second
	return c
}

func activities() []string {
	var out []string
	for _, a := range sspr.Builtin {
		out = append(out, a.Name)
	}
	return out
}

func audit(id, name, service string, at time.Time) map[string]any {
	return map[string]any{
		"id": id, "category": "UserManagement", "correlationId": "c-" + id, "result": "success", "resultReason": "",
		"activityDisplayName": name, "activityDateTime": at.UTC().Format("2006-01-02T15:04:05.0000000Z"), "loggedByService": service, "operationType": "Update",
		"initiatedBy":       map[string]any{"user": map[string]any{"id": "u-" + id, "userPrincipalName": id + "@contoso.example"}, "app": nil},
		"targetResources":   []any{map[string]any{"id": "u-" + id, "type": "User", "userPrincipalName": id + "@contoso.example", "modifiedProperties": []any{}}},
		"additionalDetails": []any{},
	}
}

// feed collects what a reader hands over.
type feed struct {
	mu      sync.Mutex
	units   []backfill.Unit
	done    map[string]bool
	chunks  []backfill.Chunk
	tenants []string
	planned bool
}

func (f *feed) Begin(u backfill.Unit) (backfill.Resume, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.units = append(f.units, u)
	return backfill.Resume{}, !f.done[u.Key]
}

func (f *feed) Emit(_ context.Context, c backfill.Chunk) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.planned {
		return errors.New("chunk before the plan")
	}
	f.chunks = append(f.chunks, c)
	return nil
}

func (f *feed) Tenant(id string) { f.tenants = append(f.tenants, id) }
func (f *feed) Planned()         { f.planned = true }

// ids are the record ids of the chunks, in order.
func (f *feed) ids(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, c := range f.chunks {
		for _, b := range c.Bodies {
			var m struct{ ID string }
			if err := json.Unmarshal(b.Data, &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m.ID)
		}
	}
	return out
}

var day0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func read(t *testing.T, cfg Config, rng backfill.Range, f *feed) error {
	t.Helper()
	r, err := New(cfg, Options{Range: rng, Activities: activities()})
	if err != nil {
		t.Fatal(err)
	}
	return r.Read(context.Background(), f)
}

// TestReadsTheCatalogOfTheRange: in day slices, every record of the
// range that the catalog can keep, once (also when two queries return
// it), nothing else; records at the range's edges on the right side.
func TestReadsTheCatalogOfTheRange(t *testing.T) {
	s := graphapi.New(t)
	s.SetPageSize(2)
	s.SetFilterLimit(15)
	s.AddAudits(
		audit("before", "Reset password (self-service)", sspr.ServiceName, day0.Add(-time.Nanosecond*100)),
		audit("at-start", "Reset password (self-service)", sspr.ServiceName, day0),
		audit("other-sspr-activity", "Some new step", sspr.ServiceName, day0.Add(time.Hour)),
		audit("security-info", "User registered security info", sspr.ServiceAuthenticationMethods, day0.Add(2*time.Hour)),
		audit("core-reset", "Reset user password", sspr.ServiceCoreDirectory, day0.Add(25*time.Hour)),
		audit("not-sspr", "Update user", sspr.ServiceCoreDirectory, day0.Add(26*time.Hour)),
		audit("midnight", "Change password (self-service)", sspr.ServiceName, day0.Add(48*time.Hour)),
		audit("last-tick", "Blocked from self-service password reset", sspr.ServiceName, day0.Add(72*time.Hour-100*time.Nanosecond)),
		audit("at-end", "Blocked from self-service password reset", sspr.ServiceName, day0.Add(72*time.Hour)),
	)
	f := &feed{}
	if err := read(t, testConfig(t, s), backfill.Range{From: day0, To: day0.Add(72 * time.Hour)}, f); err != nil {
		t.Fatal(err)
	}
	got := f.ids(t)
	want := []string{"at-start", "other-sspr-activity", "security-info", "core-reset", "midnight", "last-tick"}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("read %v, want %v", got, want)
	}
	if len(f.units) != 3 || !f.planned || len(f.tenants) != 1 || f.tenants[0] != graphapi.TenantID {
		t.Errorf("units %d planned %v tenants %v: want 3 day slices of the tenant", len(f.units), f.planned, f.tenants)
	}
	for _, u := range f.units {
		if u.From.Hour() != 0 || u.To.Sub(u.From) != 24*time.Hour || u.Tenant != graphapi.TenantID || u.Version == "" {
			t.Errorf("unit %+v", u)
		}
	}
	finals := 0
	for _, c := range f.chunks {
		if c.Final {
			finals++
		}
		if c.End != nil {
			t.Error("a slice chunk claims a resume position")
		}
	}
	if finals != 3 {
		t.Errorf("%d final chunks, want one per slice", finals)
	}
	for _, p := range s.Paths() {
		q, _ := url.ParseQuery(strings.SplitN(p, "?", 2)[1])
		f := q.Get("$filter")
		if !strings.Contains(f, "activityDateTime ge ") || !strings.Contains(f, "activityDateTime le ") || strings.Contains(f, " lt ") {
			t.Errorf("request %s: the slice is not filtered with ge and le", p)
		}
	}
}

// TestQueriesKeepWithinTheLimits: the catalog is split into queries of at
// most max_filter_terms comparisons and 2,048 characters; a record that
// two of them return is handed on once.
func TestQueriesKeepWithinTheLimits(t *testing.T) {
	s := graphapi.New(t)
	cfg := testConfig(t, s)
	cfg.MaxFilterTerms = 4 // the two on the time and two activities
	s.SetFilterLimit(4)
	s.AddAudits(audit("both", "Reset password (self-service)", sspr.ServiceName, day0.Add(time.Hour)))
	r, err := New(cfg, Options{Range: backfill.Range{From: day0, To: day0.Add(24 * time.Hour)}, Activities: activities()})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(terms(activities())); r.Queries() != (n+1)/2 {
		t.Errorf("%d queries for %d terms of at most 2", r.Queries(), n)
	}
	f := &feed{}
	if err := r.Read(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if got := f.ids(t); !slices.Equal(got, []string{"both"}) {
		t.Errorf("read %v, want the record once", got)
	}
	for _, p := range s.Paths() {
		if len(s.URL())+len(p) > maxURL {
			t.Errorf("URL of %d characters", len(s.URL())+len(p))
		}
	}
	long := strings.Repeat("x", 3000)
	for _, g := range groups("https://graph.microsoft.com/v1.0/auditLogs/directoryAudits", terms([]string{long, "a", "b"}), 15, 999) {
		if strings.Contains(g, long) {
			t.Error("a value longer than Graph matches with eq is sent whole")
		}
	}
}

// TestThrottlingAndFaults: 429 and 503 are waited out as Retry-After
// says and tried again, an empty page with a next link is followed, a
// revoked token is renewed; 403 ends the read at once, saying what to do.
func TestThrottlingAndFaults(t *testing.T) {
	s := graphapi.New(t)
	s.AddAudits(audit("a", "Reset password (self-service)", sspr.ServiceName, day0.Add(time.Hour)))
	s.Inject(graphapi.Fault{Status: 429, RetryAfter: "1", Path: "directoryAudits"})
	s.Inject(graphapi.Fault{Status: 503, RetryAfter: "0.5", Path: "directoryAudits"})
	s.Inject(graphapi.Fault{Empty: true, Path: "directoryAudits"})
	cfg := testConfig(t, s)
	cfg.MaxAttempts = 1 // throttled answers do not count
	f := &feed{}
	rng := backfill.Range{From: day0, To: day0.Add(24 * time.Hour)}
	if err := read(t, cfg, rng, f); err != nil {
		t.Fatal(err)
	}
	if got := f.ids(t); !slices.Equal(got, []string{"a"}) {
		t.Errorf("read %v", got)
	}
	times := s.Times()
	if len(times) < 4 {
		t.Fatalf("%d requests, want the throttled ones, the empty page and the page", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < time.Second {
		t.Errorf("retried %v after a 429 asking for 1 s", gap)
	}
	if gap := times[2].Sub(times[1]); gap < 500*time.Millisecond {
		t.Errorf("retried %v after a 503 asking for 0.5 s", gap)
	}

	s.RevokeTokens()
	if err := read(t, cfg, rng, &feed{}); err != nil {
		t.Errorf("after revocation: %v", err)
	}

	s.Forbid(true)
	before := len(s.Paths())
	err := read(t, cfg, rng, &feed{})
	if err == nil || !strings.Contains(err.Error(), "Authorization_RequestDenied") || !strings.Contains(err.Error(), "AuditLog.Read.All") {
		t.Errorf("403: %v", err)
	}
	if n := len(s.Paths()) - before; n != 1 {
		t.Errorf("%d requests after a 403, want 1 (no retry)", n)
	}
}

// TestServerErrorsTriedUpToMaxAttempts: a failing Graph is tried
// max_attempts times, then the read fails.
func TestServerErrorsTriedUpToMaxAttempts(t *testing.T) {
	s := graphapi.New(t)
	s.Inject(graphapi.Fault{Status: 500, Times: 10, Path: "directoryAudits"})
	cfg := testConfig(t, s)
	cfg.MaxAttempts = 3
	err := read(t, cfg, backfill.Range{From: day0, To: day0.Add(time.Hour)}, &feed{})
	if err == nil || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Errorf("%v", err)
	}
	if n := len(s.Paths()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

// TestTenantFromTheToken: with tenant_id a domain, the tenant is the one
// the token was issued for; wrong credentials fail before reading.
func TestTenantFromTheToken(t *testing.T) {
	s := graphapi.New(t)
	cfg := testConfig(t, s)
	cfg.TenantID = graphapi.TenantDomain
	r, err := New(cfg, Options{Range: backfill.Range{From: day0, To: day0.Add(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := r.Tenant(context.Background()); err != nil || id != graphapi.TenantID {
		t.Errorf("tenant %q %v, want %s", id, err, graphapi.TenantID)
	}
	cfg.ClientSecret = secret.New("wrong")
	r, _ = New(cfg, Options{})
	_, err = r.Tenant(context.Background())
	if err == nil || !strings.Contains(err.Error(), "AADSTS7000215") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong secret: %v", err)
	}
}

// TestSkipsCompleteSlices: slices the state holds complete are not
// requested; slices are aligned to whole days whatever the range.
func TestSkipsCompleteSlices(t *testing.T) {
	s := graphapi.New(t)
	cfg := testConfig(t, s)
	r, _ := New(cfg, Options{Range: backfill.Range{From: day0.Add(6 * time.Hour), To: day0.Add(50 * time.Hour)}, Activities: activities()})
	sl := r.slices()
	if len(sl) != 3 || !sl[0].from.Equal(day0.Add(6*time.Hour)) || !sl[1].from.Equal(day0.Add(24*time.Hour)) || !sl[2].to.Equal(day0.Add(50*time.Hour)) {
		t.Fatalf("slices %v", sl)
	}
	f := &feed{done: map[string]bool{sl[0].key(): true, sl[2].key(): true}}
	if err := r.Read(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	per := r.Queries()
	if n := len(s.Paths()); n != per {
		t.Errorf("%d requests, want %d (one slice of %d queries)", n, per, per)
	}
}
