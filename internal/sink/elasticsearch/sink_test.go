package elasticsearch

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
)

var nov = time.Date(2026, 11, 14, 9, 30, 0, 0, time.UTC)

// Double: it measures every request's size and the requests in flight, which a node does not report.
func TestByteBoundSplitsRequests(t *testing.T) {
	d, cfg := setupDouble(t)
	cfg.Bulk.MaxBytes = 8 << 10
	s := newSink(t, cfg, nil)
	if err := s.Write(tctx(t), events("bytes", 200, nov)); err != nil {
		t.Fatal(err)
	}
	st := d.Stats()
	if st.MaxBulkBytes > cfg.Bulk.MaxBytes || st.BulkRequests < 2 || d.Count("*") != 200 {
		t.Errorf("stats %+v, count %d: want requests of at most %d bytes, 200 docs", st, d.Count("*"), cfg.Bulk.MaxBytes)
	}
	if st.MaxInFlight > cfg.Bulk.MaxInFlight {
		t.Errorf("%d requests in flight, bound is %d", st.MaxInFlight, cfg.Bulk.MaxInFlight)
	}
}

// Double: per-item 429 and 503 on demand (faults a node will not make); the 400 and 409 are also checked on the nodes.
func TestMixedItemOutcomes(t *testing.T) {
	d, cfg := setupDouble(t)
	s := newSink(t, cfg, nil)
	if err := s.Write(tctx(t), []ecs.Event{event("dup", nov)}); err != nil {
		t.Fatal(err)
	}
	bad := event("bad", nov)
	bad.Source.IP = "not-an-ip"
	badRelated := event("bad-related", nov)
	badRelated.Related.IP = []string{"203.0.113.9", "unknown"}
	docs := []ecs.Event{event("new", nov), event("dup", nov), bad, event("busy", nov), badRelated, event("flaky", nov)}
	d.FailItem("busy", 429, 429, 429)
	d.FailItem("flaky", 503)

	err := s.Write(tctx(t), docs)
	rej, ok := stream.AsRejected(err)
	if !ok {
		t.Fatalf("want *stream.Rejected, got %v", err)
	}
	if rej.Sink != Name || len(rej.Docs) != 2 || rej.Docs[0].Index != 2 || rej.Docs[1].Index != 4 {
		t.Fatalf("rejections %+v, want docs 2 and 4", rej.Docs)
	}
	var ie *ItemError
	if !errors.As(rej.Docs[0].Err, &ie) || ie.Type != "document_parsing_exception" || ie.Status != 400 || !strings.Contains(ie.Reason, "source.ip") {
		t.Errorf("rejection reason %#v", rej.Docs[0].Err)
	}
	for _, id := range []string{"new", "dup", "busy", "flaky"} {
		if d.Get("entra-sspr-2026.11.01", id) == nil {
			t.Errorf("%s not stored", id)
		}
	}
	if d.Count("*") != 4 {
		t.Errorf("count %d, want 4", d.Count("*"))
	}
	if st := s.Stats(); st.Created != 4 || st.Duplicates != 1 || st.Rejected != 2 || st.Retried < 4 {
		t.Errorf("sink stats %+v: want 4 created (dup's first write included), 1 duplicate, 2 rejected, 4+ retried", st)
	}
}

// Double: per-item 429s on demand; the whole-request 429 is checked on the nodes (TooManyRequestsRetried).
func TestTooManyRequestsStorm(t *testing.T) {
	d, cfg := setupDouble(t)
	s := newSink(t, cfg, nil)
	d.FailNext(6, 429)
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	budget := 400
	d.SetItemHook(func(_, _, _ string) int {
		mu.Lock()
		defer mu.Unlock()
		if budget > 0 && rng.IntN(3) == 0 {
			budget--
			return 429
		}
		return 0
	})
	if err := s.Write(tctx(t), events("storm", 600, nov)); err != nil {
		t.Fatalf("write: %v", err)
	}
	if n := d.Count("*"); n != 600 {
		t.Errorf("stored %d of 600", n)
	}
	if st := d.Stats(); st.ItemErrors == 0 || st.FailedRequests < 6 {
		t.Errorf("the storm did not happen: %+v", st)
	}
	if err := s.Ready(); err != nil {
		t.Errorf("429s must not make the sink unready: %v", err)
	}
}

// Double: it drops every connection on demand; the chaos suite kills a real node.
func TestOutageLosesNothing(t *testing.T) {
	d, cfg := setupDouble(t)
	cfg.Bulk.MaxDocs = 100
	cfg.Bulk.MaxBytes = 32 << 10 // the 1000 documents are ~1 MB: 30+ requests
	cfg.Bulk.MaxInFlight = 2
	logs := &syncbuf.Buffer{}
	s := newSink(t, cfg, logs)
	if err := s.Write(tctx(t), events("before", 10, nov)); err != nil {
		t.Fatal(err)
	}
	d.SetDown(true)
	done := make(chan error, 1)
	go func() { done <- s.Write(tctx(t), events("during", 1000, nov)) }()
	waitFor(t, "the sink to notice the outage", func() bool { return s.Ready() != nil })
	time.Sleep(outage(t))
	stillWriting(t, done, "the node was down")
	d.SetDown(false)
	if err := <-done; err != nil {
		t.Fatalf("write across the outage: %v", err)
	}
	if n := d.Count("*"); n != 1010 {
		t.Errorf("stored %d of 1010", n)
	}
	if err := s.Ready(); err != nil {
		t.Errorf("still unready after the outage: %v", err)
	}
	if st := d.Stats(); st.MaxInFlight > cfg.Bulk.MaxInFlight || st.MaxBulkBytes > cfg.Bulk.MaxBytes {
		t.Errorf("bounds exceeded: %+v", st)
	}
	// Memory: while nothing got through, the sink held at most
	// max_in_flight request bodies, not the 1000 documents encoded.
	ss := s.Stats()
	if ss.PeakHeld > int64(cfg.Bulk.MaxInFlight*cfg.Bulk.MaxBytes) || ss.PeakHeld == 0 || ss.HeldBytes != 0 {
		t.Errorf("held bytes peak %d (bound %d), now %d", ss.PeakHeld, cfg.Bulk.MaxInFlight*cfg.Bulk.MaxBytes, ss.HeldBytes)
	}
	if ss.Created != 1010 || ss.Retried == 0 {
		t.Errorf("sink stats %+v", ss)
	}
	if !strings.Contains(logs.String(), "unreachable") || !strings.Contains(logs.String(), "accepts writes again") {
		t.Errorf("logs do not tell the outage and the recovery:\n%s", logs.String())
	}
}

// Double: the test nodes run without the security plugin, so nothing answers 403.
func TestForbiddenIsRetriedNotRejected(t *testing.T) {
	d, cfg := setupDouble(t)
	logs := &syncbuf.Buffer{}
	s := newSink(t, cfg, logs)
	d.Forbid(true)
	done := make(chan error, 1)
	go func() { done <- s.Write(tctx(t), events("forbidden", 20, nov)) }()
	waitFor(t, "unready", func() bool { return s.Ready() != nil })
	if r := s.Ready().Error(); !strings.Contains(r, "403") || !strings.Contains(r, "security_exception") {
		t.Errorf("Ready() = %q, want the 403 and its type", r)
	}
	waitFor(t, "a few retries", func() bool { return d.Stats().FailedRequests >= 5 })
	stillWriting(t, done, "writes were forbidden")
	d.Forbid(false)
	if err := <-done; err != nil {
		t.Fatalf("after the fix: %v", err)
	}
	if d.Count("*") != 20 || s.Ready() != nil {
		t.Errorf("count %d, ready %v", d.Count("*"), s.Ready())
	}
	if n := strings.Count(logs.String(), "refuses writes"); n == 0 || n > 20 {
		t.Errorf("logged the refusal %d times; want it logged, rate-limited", n)
	}
}

// Double: a 401 on demand (no security plugin on the test nodes).
func TestContextEndStopsRetrying(t *testing.T) {
	d, cfg := setupDouble(t)
	s := newSink(t, cfg, nil)
	d.Unauthorized(true)
	ctx, cancel := context.WithCancel(tctx(t))
	done := make(chan error, 1)
	go func() { done <- s.Write(ctx, events("ctx", 3, nov)) }()
	waitFor(t, "unready", func() bool { return s.Ready() != nil })
	cancel()
	err := <-done
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("want a context error, got %v", err)
	}
	if _, ok := stream.AsRejected(err); ok {
		t.Error("a context end must not reject documents")
	}
}

// Double: it counts the requests in flight, which a node does not report.
func TestConcurrentWrites(t *testing.T) {
	d, cfg := setupDouble(t)
	cfg.Bulk.MaxDocs = 50
	s := newSink(t, cfg, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Write(tctx(t), events(string(rune('a'+w)), 300, nov))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if d.Count("*") != 1200 || d.Stats().MaxInFlight > cfg.Bulk.MaxInFlight {
		t.Errorf("count %d, in flight %d", d.Count("*"), d.Stats().MaxInFlight)
	}
}

// Double: nothing is sent; any server will do.
func TestWriteAfterClose(t *testing.T) {
	_, cfg := setupDouble(t)
	s := newSink(t, cfg, nil)
	_ = s.Close(t.Context())
	if err := s.Write(tctx(t), events("x", 1, nov)); err == nil {
		t.Error("write after close succeeded")
	}
}
