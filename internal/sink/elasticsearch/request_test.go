package elasticsearch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/esdouble"
)

const novIndex = "entra-sspr-2026.11.01"

// hashedID is the documented _id of a record id that cannot be used as is.
func hashedID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "longid-sha256-" + hex.EncodeToString(sum[:])
}

func storedEventID(t *testing.T, d *esdouble.Double, id string) string {
	t.Helper()
	src := d.Get(novIndex, id)
	if src == nil {
		t.Fatalf("no document under _id %.80q; ids: %.300q", id, d.IDs(novIndex))
	}
	var doc struct {
		Event struct {
			ID string `json:"id"`
		} `json:"event"`
	}
	if err := json.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Event.ID
}

// Elasticsearch refuses a whole bulk request when one _id is longer than
// 512 bytes of UTF-8, so such ids are stored under a hash of themselves,
// the same on every replay, and kept whole in event.id.
func TestOverlongIDsAreStoredUnderAStableHash(t *testing.T) {
	d, cfg := setupDouble(t)
	s := newSink(t, cfg, nil)
	long := strings.Repeat("é", 300)       // 300 characters, 600 bytes
	invalid := strings.Repeat("\xff", 200) // 200 bytes here, 600 once JSON makes each byte U+FFFD
	exact := strings.Repeat("x", 512)
	docs := append(events("long", 13, nov), event(long, nov), event(invalid, nov), event(exact, nov))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Write(ctx, docs); err != nil {
		t.Fatalf("write: %v", err)
	}
	if n := d.Count("*"); n != 16 {
		t.Fatalf("stored %d of 16", n)
	}
	if got := storedEventID(t, d, hashedID(long)); got != long {
		t.Errorf("event.id of the hashed document = %.40q..., want the record id", got)
	}
	storedEventID(t, d, hashedID(invalid))
	if got := storedEventID(t, d, exact); got != exact {
		t.Errorf("a 512-byte id is not stored as is")
	}

	// A replay lands on the same _id: nothing is added.
	if err := s.Write(ctx, docs); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if st := s.Stats(); st.Duplicates != 16 || d.Count("*") != 16 {
		t.Errorf("after a replay: %d duplicates, %d stored; want 16, 16", st.Duplicates, d.Count("*"))
	}

	// A record whose own id looks like a hashed one is hashed as well, so
	// it can never be taken for the long one's copy.
	if err := s.Write(ctx, []ecs.Event{event(hashedID(long), nov)}); err != nil {
		t.Fatal(err)
	}
	if d.Count("*") != 17 || storedEventID(t, d, hashedID(hashedID(long))) != hashedID(long) {
		t.Errorf("a look-alike id was not stored apart: %d documents", d.Count("*"))
	}
}

// A bulk request Elasticsearch refuses as a whole (400) is halved until
// the document that causes it is alone; that document is rejected (and
// dead-lettered by the pipeline), everything else is stored.
func TestRefusedRequestIsSplitDownToTheDocument(t *testing.T) {
	d, cfg := setupDouble(t)
	s := newSink(t, cfg, nil)
	docs := events("split400", 16, nov)
	ids := make([]string, len(docs))
	for i := range docs {
		ids[i] = docs[i].Event.ID
	}
	ids[3], ids[11] = strings.Repeat("3", 600), strings.Repeat("b", 513)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The ids go as given, not hashed: what a request with over-long ids
	// looks like to a node.
	raw := make([]bulk.RawDoc, len(docs))
	for i := range docs {
		raw[i] = bulk.RawDoc{Index: IndexName(cfg.Index.Prefix, cfg.Index.Granularity, docs[i].Time), ID: ids[i], Source: docs[i].AppendJSON(nil)}
	}
	err := s.WriteRaw(ctx, raw)
	rej, ok := stream.AsRejected(err)
	if !ok {
		t.Fatalf("WriteRaw: %v, want the two documents rejected", err)
	}
	if len(rej.Docs) != 2 || rej.Docs[0].Index != 3 || rej.Docs[1].Index != 11 {
		t.Fatalf("rejected %+v, want documents 3 and 11", rej.Docs)
	}
	for _, r := range rej.Docs {
		var ie *ItemError
		if !errors.As(r.Err, &ie) || ie.Status != 400 || ie.Type != "action_request_validation_exception" || !strings.Contains(ie.Reason, "is too long") {
			t.Errorf("rejection of %d: %#v", r.Index, r.Err)
		}
	}
	if n := d.Count("*"); n != 14 {
		t.Errorf("stored %d of 14", n)
	}
	if st := s.Stats(); st.Created != 14 || st.Rejected != 2 {
		t.Errorf("stats %+v: want 14 created, 2 rejected", st)
	}
	if err := s.Ready(); err != nil {
		t.Errorf("a refused document made the sink unready: %v", err)
	}
}

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
