package elasticsearch

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/testserver/esdouble"
)

// proxied puts a reverse proxy in front of d; intercept answers a request
// itself when it returns true.
func proxied(t *testing.T, d *esdouble.Double, intercept func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	u, _ := url.Parse(d.URL())
	rp := httputil.NewSingleHostReverseProxy(u)
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !intercept(w, r) {
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(p.Close)
	return p.URL
}

// Double behind a proxy: a node never answers with a proxy's page.
// A 400 that does not come from Elasticsearch (a proxy's page) cannot be
// pinned on a document: rejecting would dead-letter every document. It is
// retried, and the sink says why it is not ready, until it heals.
func TestBadRequestFromAProxyIsRetriedNotRejected(t *testing.T) {
	d, cfg := setupDouble(t)
	var refuse atomic.Bool
	var refused atomic.Int64
	refuse.Store(true)
	cfg.Addresses = []string{proxied(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if !refuse.Load() || !strings.HasSuffix(r.URL.Path, "/_bulk") {
			return false
		}
		refused.Add(1)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("<html><body><h1>400 Bad Request</h1>Request Header Or Cookie Too Large</body></html>"))
		return true
	})}
	s := newSink(t, cfg, nil)
	done := make(chan error, 1)
	go func() { done <- s.Write(tctx(t), events("proxy400", 20, nov)) }()
	waitFor(t, "a few refused attempts", func() bool { return refused.Load() >= 4 })
	if r := s.Ready(); r == nil || !strings.Contains(r.Error(), "400") {
		t.Errorf("Ready() = %v, want the 400", r)
	}
	stillWriting(t, done, "the proxy refused")
	refuse.Store(false)
	if err := <-done; err != nil {
		t.Fatalf("after the proxy healed: %v", err)
	}
	if n := d.Count("*"); n != 20 {
		t.Errorf("stored %d of 20", n)
	}
}

// Double behind a proxy: a node never sends a short answer.
// A 200 answer that does not account for every action (a broken proxy, a
// truncated body) is not taken as "all stored".
func TestBulkAnswerMissingItemsIsNotTakenAsStored(t *testing.T) {
	d, cfg := setupDouble(t)
	var lied atomic.Bool
	cfg.Addresses = []string{proxied(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/_bulk") || !lied.CompareAndSwap(false, true) {
			return false
		}
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"errors":false,"took":1,"items":[]}`))
		return true
	})}
	s := newSink(t, cfg, nil)
	if err := s.Write(tctx(t), events("short", 10, nov)); err != nil {
		t.Fatal(err)
	}
	if n := d.Count("*"); !lied.Load() || n != 10 {
		t.Errorf("stored %d of 10 (answer cut short: %v)", n, lied.Load())
	}
}

// Double behind a proxy: a node never sends such items.
// Bulk items the sink cannot read as a create result (another action's
// key, no status) are retried, and the sink says why it is not ready
// instead of retrying in silence.
func TestUnreadableBulkItemsAreReported(t *testing.T) {
	d, cfg := setupDouble(t)
	var odd atomic.Bool
	odd.Store(true)
	cfg.Addresses = []string{proxied(t, d, func(w http.ResponseWriter, r *http.Request) bool {
		if !odd.Load() || !strings.HasSuffix(r.URL.Path, "/_bulk") {
			return false
		}
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"errors":true,"took":1,"items":[{"update":{"_index":"x","_id":"1","status":200}},{"create":{"_index":"x","_id":"2"}}]}`))
		return true
	})}
	s := newSink(t, cfg, nil)
	done := make(chan error, 1)
	go func() { done <- s.Write(tctx(t), events("odd", 2, nov)) }()
	waitFor(t, "the sink to report the unreadable items", func() bool { return s.Ready() != nil })
	if r := s.Ready().Error(); !strings.Contains(r, "item") {
		t.Errorf("Ready() = %q, want it to name the items", r)
	}
	odd.Store(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d.Count("*") != 2 || s.Ready() != nil {
		t.Errorf("count %d, ready %v", d.Count("*"), s.Ready())
	}
}
