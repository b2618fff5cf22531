package elasticsearch

import (
	"context"
	"encoding/json"
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

func TestHappyPath(t *testing.T) {
	d, cfg := setupDouble(t)
	cfg.Bulk.MaxDocs = 400
	s := newSink(t, cfg, nil)
	docs := events("happy", 1000, nov)
	if err := s.Write(tctx(t), docs); err != nil {
		t.Fatalf("write: %v", err)
	}
	if n := d.Count("entra-sspr-2026.11.01"); n != 1000 {
		t.Fatalf("stored %d, want 1000", n)
	}
	if st := d.Stats(); st.BulkRequests != 3 || st.Created != 1000 || st.MaxBulkBytes > cfg.Bulk.MaxBytes {
		t.Errorf("stats %+v: want 3 requests of at most %d bytes", st, cfg.Bulk.MaxBytes)
	}
	want, _ := json.Marshal(docs[7])
	if got := d.Get("entra-sspr-2026.11.01", "happy-00007"); string(got) != string(want) {
		t.Errorf("stored source\n%s\nwant\n%s", got, want)
	}
	if err := s.Ready(); err != nil {
		t.Errorf("Ready: %v", err)
	}
	if err := s.Write(tctx(t), nil); err != nil {
		t.Errorf("empty write: %v", err)
	}
}

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

func TestReplaysKeepOneCopyInTheEventsMonth(t *testing.T) {
	d, cfg := setupDouble(t)
	s := newSink(t, cfg, nil)
	oct := time.Date(2026, 10, 31, 23, 59, 59, 0, time.UTC)
	batch := append(events("oct", 50, oct.Add(-time.Hour)), events("nov", 50, nov)...)
	batch = append(batch, event("edge", oct))
	for round := range 3 {
		// Each round is a replay, e.g. after a crash before the checkpoint,
		// or of an archive a month later: the index follows the event's
		// date, never the clock, so the ids collide and nothing is added.
		if err := s.Write(tctx(t), batch); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	if n := d.Count("entra-sspr-2026.10.01"); n != 51 {
		t.Errorf("October index holds %d, want 51", n)
	}
	if n := d.Count("entra-sspr-2026.11.01"); n != 50 {
		t.Errorf("November index holds %d, want 50", n)
	}
	if got := d.Indices(); len(got) != 2 {
		t.Errorf("indices %v, want only the two months", got)
	}
	if st := d.Stats(); st.Conflicts != 2*len(batch) || st.Created != len(batch) {
		t.Errorf("stats %+v: want %d created, %d conflicts", st, len(batch), 2*len(batch))
	}
}

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

func TestBlockedIndexIsRetriedNotRejected(t *testing.T) {
	for _, block := range []string{"read-only", "closed"} {
		t.Run(block, func(t *testing.T) {
			d, cfg := setupDouble(t)
			s := newSink(t, cfg, nil)
			idx := "entra-sspr-2026.11.01"
			set := func(on bool) {
				if block == "closed" {
					d.SetClosed(idx, on)
				} else {
					d.SetReadOnly(idx, on)
				}
			}
			set(true)
			done := make(chan error, 1)
			go func() { done <- s.Write(tctx(t), events(block, 5, nov)) }()
			waitFor(t, "unready", func() bool { return s.Ready() != nil })
			want := map[string]string{"read-only": "cluster_block_exception", "closed": "index_closed_exception"}[block]
			if !strings.Contains(s.Ready().Error(), want) {
				t.Errorf("Ready() = %v, want %s", s.Ready(), want)
			}
			set(false)
			if err := <-done; err != nil {
				t.Fatalf("after unblocking: %v", err)
			}
			if d.Count(idx) != 5 {
				t.Errorf("count %d", d.Count(idx))
			}
		})
	}
}

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

func TestOversizedRequestIsSplit(t *testing.T) {
	d, cfg := setupDouble(t)
	d.SetMaxContentLength(6 << 10)
	s := newSink(t, cfg, nil)
	huge := event("huge", nov)
	huge.Event.Original = strings.Repeat("x", 8<<10)
	docs := append(events("split", 40, nov), huge)
	err := s.Write(tctx(t), docs)
	rej, ok := stream.AsRejected(err)
	if !ok || len(rej.Docs) != 1 || rej.Docs[0].Index != 40 || !strings.Contains(rej.Docs[0].Err.Error(), "413") {
		t.Fatalf("want only the huge document rejected for 413, got %v", err)
	}
	if n := d.Count("*"); n != 40 {
		t.Errorf("stored %d of 40", n)
	}
}

func TestDocumentsThatCannotBeAddressedAreRejected(t *testing.T) {
	d, cfg := setupDouble(t)
	s := newSink(t, cfg, nil)
	noID := event("", nov)
	noTime := event("notime", nov)
	noTime.Time, noTime.Timestamp = time.Time{}, "garbage"
	onlyStamp := event("stamp", nov)
	onlyStamp.Time = time.Time{}
	err := s.Write(tctx(t), []ecs.Event{noID, noTime, onlyStamp})
	rej, ok := stream.AsRejected(err)
	if !ok || len(rej.Docs) != 2 || rej.Docs[0].Index != 0 || rej.Docs[1].Index != 1 {
		t.Fatalf("got %v", err)
	}
	if d.Get("entra-sspr-2026.11.01", "stamp") == nil {
		t.Error("a document with only @timestamp was not stored")
	}
}

func TestUnusualIDsAreEscaped(t *testing.T) {
	d, cfg := setupDouble(t)
	s := newSink(t, cfg, nil)
	id := "a\"b\\c\u00e9\u2028"
	if err := s.Write(tctx(t), []ecs.Event{event(id, nov)}); err != nil {
		t.Fatal(err)
	}
	if d.Get("entra-sspr-2026.11.01", id) == nil {
		t.Errorf("stored under ids %q", d.IDs("entra-sspr-2026.11.01"))
	}
}

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

func TestWriteAfterClose(t *testing.T) {
	_, cfg := setupDouble(t)
	s := newSink(t, cfg, nil)
	_ = s.Close(t.Context())
	if err := s.Write(tctx(t), events("x", 1, nov)); err == nil {
		t.Error("write after close succeeded")
	}
}
