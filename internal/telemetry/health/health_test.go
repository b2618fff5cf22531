package health

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// toggle is a component whose readiness the test sets.
type toggle struct {
	mu  sync.Mutex
	err error
}

func (t *toggle) set(err error) { t.mu.Lock(); t.err = err; t.mu.Unlock() }
func (t *toggle) Ready() error  { t.mu.Lock(); defer t.mu.Unlock(); return t.err }

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func readyz(t *testing.T, c *Checker) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	c.Readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code, rec.Body.String()
}

func TestReadyzFollowsComponents(t *testing.T) {
	c := New(0)
	src, es := &toggle{}, &toggle{}
	c.Add("source.eventhubs", src)
	c.Add("sink.elasticsearch", es)

	code, body := readyz(t, c)
	if code != http.StatusOK || body != "ready\nsource.eventhubs: ok\nsink.elasticsearch: ok\n" {
		t.Fatalf("all ready: %d %q", code, body)
	}

	es.set(errors.New("elasticsearch: cluster health red\n(3 unassigned shards)"))
	code, body = readyz(t, c)
	want := "not ready\nsource.eventhubs: ok\nsink.elasticsearch: not ready: elasticsearch: cluster health red (3 unassigned shards)\n"
	if code != http.StatusServiceUnavailable || body != want {
		t.Fatalf("sink down: %d %q", code, body)
	}

	es.set(nil)
	if code, _ = readyz(t, c); code != http.StatusOK {
		t.Fatalf("recovered: %d", code)
	}
}

func TestReadyzNeverShowsSecrets(t *testing.T) {
	c := New(0)
	src := &toggle{}
	c.Add("source.eventhubs", src)
	src.set(errors.New("eventhubs: connect Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=c2VjcmV0a2V5dmFsdWUxMjM0NTY3ODkwYWJjZGVmZ2g=;EntityPath=audit: 401"))
	code, body := readyz(t, c)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("code %d", code)
	}
	if strings.Contains(body, "c2VjcmV0a2V5") || !strings.Contains(body, "SharedAccessKey=[redacted]") {
		t.Fatalf("body leaks or lost the reason: %q", body)
	}

	// A registered value is removed by a custom redactor.
	c2 := New(0, WithRedactor(func(s string) string { return strings.ReplaceAll(s, "hunter22", "[redacted]") }))
	k := &toggle{err: errors.New("kafka: SASL authentication failed for hunter22")}
	c2.Add("sink.kafka", k)
	if _, body := readyz(t, c2); strings.Contains(body, "hunter22") {
		t.Fatalf("registered secret leaked: %q", body)
	}
}

// TestReadyzNeverShowsEncodedCredentials: a reason that echoes a request's
// credentials, as a bare base64 user:password or inside a longer encoded
// body, is served without them, in text and in JSON.
func TestReadyzNeverShowsEncodedCredentials(t *testing.T) {
	r := secret.NewRedactor()
	r.AddStrings(secret.In(struct {
		Username string
		Password secret.String
	}{"elastic", secret.New("hunter2-Pw>?")})...)
	c := New(0, WithRedactor(r.Redact))
	pair := base64.StdEncoding.EncodeToString([]byte("elastic:hunter2-Pw>?"))
	// The password starts at byte 26 of the body: not on a 3-byte boundary.
	body := base64.URLEncoding.EncodeToString([]byte(`{"user":"elastic","pass":"hunter2-Pw>?"}`))
	es := &toggle{err: errors.New("elasticsearch: 401 from es-1: request header " + pair + ", body " + body)}
	c.Add("sink.elasticsearch", es)

	_, text := readyz(t, c)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
	req.Header.Set("Accept", "application/json")
	c.Readyz(rec, req)
	for _, out := range []string{text, rec.Body.String()} {
		for _, leak := range []string{pair, pair[4 : len(pair)-4], "odW50ZXIyLVB3Pj", "hunter2"} {
			if strings.Contains(out, leak) {
				t.Errorf("%q in %s", leak, out)
			}
		}
		if !strings.Contains(out, "elasticsearch: 401 from es-1") || !strings.Contains(out, "[redacted]") {
			t.Errorf("reason lost: %s", out)
		}
	}
}

func TestStallRule(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	c := New(5*time.Minute, withClock(clk.now))
	var (
		mu       sync.Mutex
		progress time.Time
		lag      int64 = -1
		lagKnown bool
	)
	setLag := func(n int64, ok bool) { mu.Lock(); lag, lagKnown = n, ok; mu.Unlock() }
	markProgress := func() { mu.Lock(); progress = clk.now(); mu.Unlock() }
	c.WatchProgress(
		func() time.Time { mu.Lock(); defer mu.Unlock(); return progress },
		func() (int64, bool) { mu.Lock(); defer mu.Unlock(); return lag, lagKnown },
	)

	expect := func(step string, wantCode int, wantIn string) {
		t.Helper()
		code, body := readyz(t, c)
		if code != wantCode || !strings.Contains(body, wantIn) {
			t.Fatalf("%s: %d %q, want %d containing %q", step, code, body, wantCode, wantIn)
		}
	}

	// Unknown lag is never stuck, however long nothing happens.
	clk.advance(time.Hour)
	expect("lag unknown", http.StatusOK, "pipeline: ok")

	// No backlog: idle is fine.
	setLag(0, true)
	clk.advance(time.Hour)
	expect("idle, no lag", http.StatusOK, "pipeline: ok")

	// A backlog appears after a quiet hour: the clock starts now.
	setLag(40, true)
	expect("backlog just seen", http.StatusOK, "pipeline: ok")
	clk.advance(4 * time.Minute)
	expect("backlog 4m", http.StatusOK, "pipeline: ok")
	clk.advance(time.Minute)
	expect("backlog 5m, no progress", http.StatusServiceUnavailable,
		"pipeline: not ready: stalled: no batch acknowledged, 40 events waiting for 5m0s (ready_stall_timeout 5m0s)")

	// Progress makes it ready again, lag or not.
	markProgress()
	expect("progress", http.StatusOK, "pipeline: ok")
	clk.advance(5*time.Minute + time.Second)
	expect("stalled since progress", http.StatusServiceUnavailable, "no batch acknowledged since 2026-11-25T11:05:00Z, 40 events waiting for 5m1s")

	// The backlog drains (lag 0): ready without further progress.
	setLag(0, true)
	expect("drained", http.StatusOK, "pipeline: ok")
}

func TestStallRuleOff(t *testing.T) {
	clk := &clock{t: time.Unix(0, 0)}
	c := New(0, withClock(clk.now))
	c.WatchProgress(func() time.Time { return time.Time{} }, func() (int64, bool) { return 1000, true })
	readyz(t, c)
	clk.advance(24 * time.Hour)
	if code, body := readyz(t, c); code != http.StatusOK {
		t.Fatalf("stall rule off but: %d %q", code, body)
	}
}

func TestReadyzJSONAndMethods(t *testing.T) {
	c := New(0)
	c.Add("sink.kafka", &toggle{err: errors.New("kafka: no brokers")})
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
	req.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	c.Readyz(rec, req)
	var rep Report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	if rec.Code != http.StatusServiceUnavailable || rep.Ready || len(rep.Components) != 1 || rep.Components[0].Reason != "kafka: no brokers" {
		t.Fatalf("json report: %d %+v", rec.Code, rep)
	}

	rec = httptest.NewRecorder()
	c.Readyz(rec, httptest.NewRequest(http.MethodPost, "/readyz", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	Healthz(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "ok\n" {
		t.Fatalf("healthz: %d %q", rec.Code, rec.Body)
	}
}

func TestReplaceComponentAndMetrics(t *testing.T) {
	c := New(0)
	a := &toggle{}
	c.Add("sink.kafka", a)
	c.AddFunc("sink.kafka", func() error { return errors.New("replaced") })
	if !c.AddIfReadiness("source.eventhubs", &toggle{}) {
		t.Fatal("AddIfReadiness refused a Readiness")
	}
	if c.AddIfReadiness("sink.file", struct{}{}) {
		t.Fatal("AddIfReadiness took a value without Ready")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	want := `
# HELP sspr_exporter_component_ready 1 when the component is ready, 0 otherwise; component pipeline is the stall rule.
# TYPE sspr_exporter_component_ready gauge
sspr_exporter_component_ready{component="sink.kafka"} 0
sspr_exporter_component_ready{component="source.eventhubs"} 1
# HELP sspr_exporter_ready 1 when /readyz answers 200, 0 otherwise.
# TYPE sspr_exporter_ready gauge
sspr_exporter_ready 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
