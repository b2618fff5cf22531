package graph

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/graphapi"
)

// syncBuffer is a log destination safe for the workers' writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testConfig points the enricher at the double, as a user would with a
// private authority: authority_host, disable_instance_discovery, ca_file.
func testConfig(t *testing.T, s *graphapi.Server) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.TenantID = graphapi.TenantID
	cfg.ClientID = graphapi.ClientID
	cfg.ClientSecret = secret.New(graphapi.ClientSecret)
	cfg.AuthorityHost = s.URL()
	cfg.DisableInstanceDiscovery = true
	cfg.Endpoint = s.URL()
	cfg.CAFile = s.CAFile(t, t.TempDir())
	cfg.Timeout = 5 * time.Second
	// A bound, not an expectation: Enrich returns as soon as Graph answers.
	cfg.MaxWait = time.Minute
	cfg.Workers = 2
	cfg.Retry = retry.Config{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("test config: %v", errs)
	}
	return cfg
}

func newTestEnricher(t *testing.T, cfg Config) (*Enricher, *syncBuffer) {
	t.Helper()
	var logs syncBuffer
	e, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e, &logs
}

func target(id string) ecs.Event {
	return ecs.Event{User: ecs.User{Target: ecs.TargetUser{ID: id, Name: id + "@contoso.example"}}}
}

// ada is a user with groups in no particular order, one without a name
// (an object the application may not read), and two roles.
var ada = graphapi.User{
	ID:                "2f8c6a1e-9d3b-4e07-a5c2-6b1e8d4f0a93",
	UserPrincipalName: "ada@contoso.example",
	Groups: []graphapi.Group{
		{ID: "9e1b0c4d-0000-4000-8000-000000000003", DisplayName: "SSPR Pilot", Direct: true},
		{ID: "9e1b0c4d-0000-4000-8000-000000000001", DisplayName: "All Staff"},
		{ID: "9e1b0c4d-0000-4000-8000-000000000002"},
	},
	Roles: []graphapi.Role{
		{ID: "r2", DisplayName: "Password Administrator", RoleTemplateID: "966707d0-3269-4727-9be2-8c3a10f19b9d"},
		{ID: "r1", DisplayName: "Helpdesk Administrator", RoleTemplateID: "729827e3-9c14-49f7-bb1b-9608f156bbb8"},
	},
}

func wantAda(t *testing.T, d ecs.Event) {
	t.Helper()
	tu := d.User.Target
	if !slices.Equal(tu.Group.ID, []string{"9e1b0c4d-0000-4000-8000-000000000001", "9e1b0c4d-0000-4000-8000-000000000002", "9e1b0c4d-0000-4000-8000-000000000003"}) ||
		!slices.Equal(tu.Group.Name, []string{"All Staff", "SSPR Pilot"}) ||
		!slices.Equal(tu.Roles, []string{"Helpdesk Administrator", "Password Administrator"}) {
		t.Errorf("target %+v, want ada's sorted groups and roles", tu)
	}
}

func TestEnrichGroupsAndRoles(t *testing.T) {
	s := graphapi.New(t)
	s.AddUser(ada)
	e, _ := newTestEnricher(t, testConfig(t, s))

	docs := []ecs.Event{target(ada.ID), {}, target(strings.ToUpper(ada.ID))}
	e.Enrich(docs)
	wantAda(t, docs[0])
	wantAda(t, docs[2])
	if g := docs[1].User.Target.Group; g.ID != nil || g.Name != nil {
		t.Errorf("document without a target got %+v", docs[1].User.Target)
	}
	if got := len(s.Paths()); got != 1 {
		t.Errorf("%d Graph requests for one user, want 1: %v", got, s.Paths())
	}
	if p := s.Paths()[0]; !strings.HasPrefix(p, "/v1.0/users/"+ada.ID+"/transitiveMemberOf?") || !strings.Contains(p, "%24select=id%2CdisplayName") && !strings.Contains(p, "$select=id,displayName") {
		t.Errorf("request %q", p)
	}

	// Cached: no new request, and each document has its own copy.
	again := []ecs.Event{target(ada.ID)}
	e.Enrich(again)
	wantAda(t, again[0])
	if got := len(s.Paths()); got != 1 {
		t.Errorf("%d Graph requests after a cached lookup, want 1", got)
	}
	again[0].User.Target.Roles[0] = "changed"
	third := []ecs.Event{target(ada.ID)}
	e.Enrich(third)
	wantAda(t, third[0])

	st := e.Stats()
	if st.Unenriched != 0 || st.Lookups[ResultOK] != 1 || st.CacheEntries != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestByUPN: a target without an object id is looked up by its UPN.
func TestByUPN(t *testing.T) {
	s := graphapi.New(t)
	s.AddUser(ada)
	e, _ := newTestEnricher(t, testConfig(t, s))
	docs := []ecs.Event{{User: ecs.User{Target: ecs.TargetUser{Name: "Ada@Contoso.example"}}}}
	e.Enrich(docs)
	wantAda(t, docs[0])
}

func TestPaging(t *testing.T) {
	s := graphapi.New(t)
	u := graphapi.User{ID: "7a0c2e4f-1111-4222-8333-444455556666"}
	var wantIDs []string
	for i := range 23 {
		id := fmt.Sprintf("g-%02d", i)
		u.Groups = append(u.Groups, graphapi.Group{ID: id, DisplayName: "Group " + id})
		wantIDs = append(wantIDs, id)
	}
	s.AddUser(u)
	s.SetPageSize(10)
	e, _ := newTestEnricher(t, testConfig(t, s))
	docs := []ecs.Event{target(u.ID)}
	e.Enrich(docs)
	if !slices.Equal(docs[0].User.Target.Group.ID, wantIDs) {
		t.Errorf("groups %v, want all 23 of the three pages", docs[0].User.Target.Group.ID)
	}
	paths := s.Paths()
	if len(paths) != 3 || !strings.Contains(paths[1], "skiptoken") || !strings.Contains(paths[2], "skiptoken") {
		t.Errorf("requests %v, want the first page and two @odata.nextLink pages", paths)
	}
}

// TestRetryAfterHonoured: a 429 pauses the lookup for the seconds Graph
// names, then it is tried again and succeeds.
func TestRetryAfterHonoured(t *testing.T) {
	s := graphapi.New(t)
	s.AddUser(ada)
	s.Inject(graphapi.Fault{Status: 429, RetryAfter: "1", Path: "transitiveMemberOf"})
	e, _ := newTestEnricher(t, testConfig(t, s))
	docs := []ecs.Event{target(ada.ID)}
	e.Enrich(docs)
	// The first batch waits at most max_wait; the lookup may still be
	// pausing when it returns, so wait for the answer to arrive.
	poll(t, func() bool { return e.Stats().Lookups[ResultOK] == 1 })
	times := s.Times()
	if len(times) != 2 {
		t.Fatalf("%d requests, want the throttled one and its retry", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < 990*time.Millisecond {
		t.Errorf("retried %v after the 429, before the Retry-After of 1s", gap)
	}
	if st := e.Stats(); st.Lookups[ResultThrottled] != 1 {
		t.Errorf("stats %+v, want one throttled answer", st)
	}
	later := []ecs.Event{target(ada.ID)}
	e.Enrich(later)
	wantAda(t, later[0])
}

// TestThrottledDoesNotWait: while Graph has asked to wait, a batch with a
// user not cached goes out at once without groups, counted.
func TestThrottledDoesNotWait(t *testing.T) {
	s := graphapi.New(t)
	s.AddUser(ada)
	s.Inject(graphapi.Fault{Status: 429, RetryAfter: "3600", Path: "transitiveMemberOf"})
	cfg := testConfig(t, s)
	e, _ := newTestEnricher(t, cfg)
	first := []ecs.Event{target(ada.ID)}
	e.Enrich(first) // waits up to max_wait: the lookup is throttled for an hour
	poll(t, func() bool { return e.Stats().Lookups[ResultThrottled] == 1 })
	second := []ecs.Event{target("11111111-2222-4333-8444-555555555555"), target(ada.ID)}
	e.Enrich(second) // returns without waiting: Graph asked for an hour
	if st := e.Stats(); st.Unenriched != 3 {
		t.Errorf("unenriched %d, want 3 (every document of both batches)", st.Unenriched)
	}
	for _, d := range append(first, second...) {
		if d.User.Target.Group.ID != nil || d.User.Target.Roles != nil {
			t.Errorf("enriched while throttled: %+v", d.User.Target)
		}
	}
}

// TestSlowGraphNeverBlocks: a Graph that does not answer costs a batch at
// most max_wait; every document goes out, unenriched and counted.
func TestSlowGraphNeverBlocks(t *testing.T) {
	s := graphapi.New(t)
	s.AddUser(ada)
	s.Inject(graphapi.Fault{Delay: time.Hour, Times: 100, Path: "transitiveMemberOf"})
	cfg := testConfig(t, s)
	cfg.MaxWait = 20 * time.Millisecond
	e, _ := newTestEnricher(t, cfg)
	for i := range 5 {
		docs := []ecs.Event{target(ada.ID), {}, target(fmt.Sprintf("00000000-0000-4000-8000-%012d", i))}
		e.Enrich(docs)
		if len(docs) != 3 || docs[0].User.Target.ID != ada.ID {
			t.Fatalf("batch %d changed: %+v", i, docs)
		}
	}
	if st := e.Stats(); st.Unenriched != 10 {
		t.Errorf("unenriched %d, want 10 (two documents with a target in each of 5 batches)", st.Unenriched)
	}
}

func TestUserNotFound(t *testing.T) {
	s := graphapi.New(t)
	e, _ := newTestEnricher(t, testConfig(t, s))
	docs := []ecs.Event{target("a0a0a0a0-0000-4000-8000-000000000000")}
	e.Enrich(docs)
	if docs[0].User.Target.Group.ID != nil {
		t.Errorf("unknown user got groups: %+v", docs[0].User.Target)
	}
	e.Enrich([]ecs.Event{target("a0a0a0a0-0000-4000-8000-000000000000")})
	if st := e.Stats(); st.Lookups[ResultNotFound] != 1 || st.Unenriched != 0 || len(s.Paths()) != 1 {
		t.Errorf("stats %+v, %d requests: want one not_found answer, cached, and nothing counted unenriched", st, len(s.Paths()))
	}
}

// TestForbidden: without the permission Graph answers 403; documents go
// out without groups, the log says what to grant, and once the permission
// is given lookups work again.
func TestForbidden(t *testing.T) {
	s := graphapi.New(t)
	s.AddUser(ada)
	s.Forbid(true)
	e, logs := newTestEnricher(t, testConfig(t, s))
	docs := []ecs.Event{target(ada.ID)}
	e.Enrich(docs)
	if docs[0].User.Target.Group.ID != nil {
		t.Fatalf("enriched despite 403: %+v", docs[0].User.Target)
	}
	if st := e.Stats(); st.Lookups[ResultError] != 1 || st.Unenriched != 1 {
		t.Errorf("stats %+v", st)
	}
	out := logs.String()
	if !strings.Contains(out, "Authorization_RequestDenied") || !strings.Contains(out, "GroupMember.Read.All") {
		t.Errorf("log %q does not name the error and the permission", out)
	}
	s.Forbid(false)
	poll(t, func() bool {
		d := []ecs.Event{target(ada.ID)}
		e.Enrich(d)
		return d[0].User.Target.Group.ID != nil
	})
}

// TestUnauthorized: a wrong secret fails at the token endpoint (never
// logged); a token Graph refuses is replaced once.
func TestUnauthorized(t *testing.T) {
	s := graphapi.New(t)
	s.AddUser(ada)
	cfg := testConfig(t, s)
	cfg.ClientSecret = secret.New("wrong-secret-value")
	e, logs := newTestEnricher(t, cfg)
	e.Enrich([]ecs.Event{target(ada.ID)})
	if st := e.Stats(); st.Lookups[ResultError] != 1 || st.Unenriched != 1 {
		t.Errorf("stats %+v", st)
	}
	out := logs.String()
	if !strings.Contains(out, "AADSTS7000215") || strings.Contains(out, "wrong-secret-value") {
		t.Errorf("log %q: want the token error, never the secret", out)
	}
	if len(s.Paths()) != 0 {
		t.Errorf("Graph called without a token: %v", s.Paths())
	}

	good, _ := newTestEnricher(t, testConfig(t, s))
	good.Enrich([]ecs.Event{target("b0b0b0b0-0000-4000-8000-000000000000")})
	s.RevokeTokens()
	docs := []ecs.Event{target(ada.ID)}
	good.Enrich(docs)
	wantAda(t, docs[0])
	if st := s.Stats(); st.Unauthorized != 1 || st.TokenRequests < 2 {
		t.Errorf("double stats %+v, want one 401 then a new token", st)
	}
}

// TestClosedEnricher: after Close documents still go out, unenriched.
func TestClosedEnricher(t *testing.T) {
	s := graphapi.New(t)
	s.AddUser(ada)
	e, _ := newTestEnricher(t, testConfig(t, s))
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	docs := []ecs.Event{target(ada.ID)}
	e.Enrich(docs)
	if docs[0].User.Target.Group.ID != nil || e.Stats().Unenriched != 1 {
		t.Errorf("closed enricher: %+v, %+v", docs[0].User.Target, e.Stats())
	}
}

func TestCacheTTLAndSize(t *testing.T) {
	c := newCache(2, time.Minute)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	c.put("a", Membership{Found: true, Roles: []string{"A"}}, t0)
	c.put("b", Membership{Found: true}, t0)
	if _, ok := c.get("a", t0.Add(30*time.Second)); !ok {
		t.Fatal("a missing before its TTL")
	}
	c.put("c", Membership{Found: true}, t0) // b is the least recently used
	if _, ok := c.get("b", t0); ok {
		t.Error("b kept beyond the size")
	}
	if _, ok := c.get("a", t0); !ok {
		t.Error("a, recently used, evicted")
	}
	if _, ok := c.get("a", t0.Add(time.Minute)); ok {
		t.Error("a served at its expiry")
	}
	if c.len() != 1 {
		t.Errorf("len %d, want 1 (c)", c.len())
	}
	c.put("c", Membership{Roles: []string{"new"}}, t0.Add(2*time.Minute))
	if m, ok := c.get("c", t0.Add(2*time.Minute+30*time.Second)); !ok || !slices.Equal(m.Roles, []string{"new"}) {
		t.Errorf("replaced entry: %+v %v", m, ok)
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.TenantID = "contoso.onmicrosoft.com"
	if errs := good.Validate(); len(errs) != 0 {
		t.Fatalf("good config: %v", errs)
	}
	for _, c := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.TenantID = "" }, "tenant_id:"},
		{func(c *Config) { c.TenantID = "not a tenant" }, "tenant_id:"},
		{func(c *Config) { c.ClientSecret = secret.New("s") }, "client_id:"},
		{func(c *Config) { c.ClientID = "0d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e" }, "client_secret:"},
		{func(c *Config) { c.ClientID, c.ClientSecret = "app", secret.New("s") }, "client_id:"},
		{func(c *Config) { c.AuthorityHost = "http://login.example" }, "authority_host:"},
		{func(c *Config) { c.Endpoint = "graph.microsoft.com" }, "endpoint:"},
		{func(c *Config) { c.Endpoint = "https://graph.microsoft.com/?x=1" }, "endpoint:"},
		{func(c *Config) { c.Timeout = 0 }, "timeout:"},
		{func(c *Config) { c.MaxWait = -time.Second }, "max_wait:"},
		{func(c *Config) { c.CacheTTL = 0 }, "cache_ttl:"},
		{func(c *Config) { c.CacheSize = 0 }, "cache_size:"},
		{func(c *Config) { c.Workers = 0 }, "workers:"},
		{func(c *Config) { c.Retry.InitialBackoff = 0 }, "retry.initial_backoff:"},
	} {
		cfg := good
		c.change(&cfg)
		errs := cfg.Validate()
		if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), c.want) {
			t.Errorf("%s: %v", c.want, errs)
		}
	}
}

// poll waits for cond, failing the test after a generous deadline.
func poll(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met before the deadline")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
