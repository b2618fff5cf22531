package logging

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// lines parses and empties the buffer.
func lines(t *testing.T, b *syncbuf.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.Take()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		out = append(out, m)
	}
	return out
}

func newLimited(interval time.Duration, now func() time.Time) (*slog.Logger, *Handler, *syncbuf.Buffer) {
	buf := &syncbuf.Buffer{}
	h := NewHandler(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}), Options{RepeatInterval: interval, Now: now})
	return slog.New(h), h, buf
}

func TestRateLimitRepeatedRecords(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	log, h, buf := newLimited(time.Minute, clk.now)
	kafka := log.With("component", "sink.kafka")
	es := log.With("component", "sink.elasticsearch")

	for i := range 5 {
		kafka.Warn("write failed, retrying", "attempt", i+1)
		clk.advance(10 * time.Second)
	}
	es.Warn("write failed, retrying", "attempt", 1)     // other component
	kafka.Error("write failed, retrying", "attempt", 9) // other level
	kafka.Warn("other message")

	got := lines(t, buf)
	if len(got) != 4 {
		t.Fatalf("want 4 lines, got %d: %v", len(got), got)
	}
	if got[0]["attempt"] != 1.0 || got[0]["component"] != "sink.kafka" {
		t.Fatalf("first record: %v", got[0])
	}

	// The interval ends: the next identical record brings the summary of
	// the four held back first, with the last one's attributes.
	clk.advance(15 * time.Second)
	kafka.Warn("write failed, retrying", "attempt", 6)
	got = lines(t, buf)
	if len(got) != 2 {
		t.Fatalf("want summary and record, got %v", got)
	}
	sum := got[0]
	if sum["msg"] != "write failed, retrying (repeated 4 times)" || sum[RepeatedKey] != 4.0 ||
		sum["component"] != "sink.kafka" || sum["attempt"] != 5.0 || sum["level"] != "WARN" {
		t.Fatalf("summary: %v", sum)
	}
	if got[1]["attempt"] != 6.0 || got[1][RepeatedKey] != nil {
		t.Fatalf("record after summary: %v", got[1])
	}

	// Held-back records are summarised on Flush.
	kafka.Warn("write failed, retrying", "attempt", 7)
	kafka.Warn("write failed, retrying", "attempt", 8)
	if got = lines(t, buf); len(got) != 0 {
		t.Fatalf("held records written: %v", got)
	}
	if err := h.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got = lines(t, buf)
	if len(got) != 1 || got[0][RepeatedKey] != 2.0 || got[0]["attempt"] != 8.0 {
		t.Fatalf("flush: %v", got)
	}
	// Nothing held back: a flush writes nothing.
	if err := h.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got = lines(t, buf); len(got) != 0 {
		t.Fatalf("second flush: %v", got)
	}
}

func TestRateLimitSummaryRedacted(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	log, h, buf := newLimited(time.Minute, clk.now)
	for range 3 {
		log.Error("dial failed", "error", "Post https://elastic:hunter2-pw@es:9200/_bulk: refused")
	}
	_ = h.Flush(context.Background())
	out := lines(t, buf)
	if len(out) != 2 || out[1][RepeatedKey] != 2.0 {
		t.Fatalf("%v", out)
	}
	for _, l := range out {
		if strings.Contains(l["error"].(string), "hunter2-pw") {
			t.Fatalf("secret in %v", l)
		}
	}
}

func TestRateLimitOff(t *testing.T) {
	log, _, buf := newLimited(0, nil)
	for range 3 {
		log.Info("same")
	}
	if n := len(lines(t, buf)); n != 3 {
		t.Fatalf("rate limiting off but %d lines", n)
	}
}

func TestRateLimitConcurrent(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	log, h, buf := newLimited(time.Minute, clk.now)
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := log.With("component", "pipeline")
			for i := range each {
				l.Warn("dead letter", "n", w*each+i)
				if i%50 == 0 {
					clk.advance(20 * time.Second)
				}
			}
		}()
	}
	wg.Wait()
	_ = h.Flush(context.Background())
	// Every record is either written or counted in a summary.
	total := 0
	for _, l := range lines(t, buf) {
		if r, ok := l[RepeatedKey].(float64); ok {
			total += int(r)
		} else {
			total++
		}
	}
	if total != workers*each {
		t.Fatalf("accounted for %d records, want %d", total, workers*each)
	}
}

func TestStartWritesDueSummaries(t *testing.T) {
	// The windows follow the fake clock, so the three records share one
	// however slow the machine; Start's ticker is real.
	clk := &fakeClock{t: time.Unix(0, 0)}
	log, h, buf := newLimited(20*time.Millisecond, clk.now)
	ctx, cancel := context.WithCancel(context.Background())
	h.Start(ctx)
	defer func() {
		cancel()
		if err := h.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}()

	log.Info("tick")
	log.Info("tick")
	log.Info("tick")
	clk.advance(time.Second)
	// No further record arrives; Start must write the summary on its own.
	deadline := time.Now().Add(10 * time.Second)
	var got []map[string]any
	for time.Now().Before(deadline) {
		got = append(got, lines(t, buf)...)
		if len(got) >= 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(got) != 2 || got[1][RepeatedKey] != 2.0 {
		t.Fatalf("want record and summary of 2, got %v", got)
	}
}

// TestRateLimitTellsEventsApart: records with the same message that
// differ in an attribute naming what happened to what (partition,
// instance, error text, a grouped attribute) are different events, each
// written however close together they come.
func TestRateLimitTellsEventsApart(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	log, h, buf := newLimited(time.Minute, clk.now)
	src := log.With("component", "source.eventhubs")
	src.Info("event hubs partition claimed", "hub", "audit", "partition", "0")
	src.Info("event hubs partition claimed", "hub", "audit", "partition", "1")
	src.Info("event hubs partition claimed", "hub", "other", "partition", "1")
	kafka := log.With("component", "source.kafka")
	kafka.Debug("kafka partition assigned", "topic", "audit", "partition", 0, "generation", 3)
	kafka.Debug("kafka partition assigned", "topic", "audit", "partition", 1, "generation", 3)
	es := log.With("component", "sink.elasticsearch")
	es.Warn("write failed, retrying", "error", "connection refused")
	es.Warn("write failed, retrying", "error", "401 Unauthorized")
	log.With("instance", "a").Warn("checkpoint not written")
	log.With("instance", "b").Warn("checkpoint not written")
	log.WithGroup("request").Info("slow request", "path", "/_bulk")
	log.WithGroup("request").Info("slow request", "path", "/_cluster/health")
	log.Info("flag", "on", true)
	log.Info("flag", "on", false)
	const distinct = 13
	if got := lines(t, buf); len(got) != distinct {
		t.Fatalf("want %d lines, one per event, got %d: %v", distinct, len(got), got)
	}

	// The same events again are repeats: held back, then summarised one
	// by one.
	src.Info("event hubs partition claimed", "hub", "audit", "partition", "0")
	src.Info("event hubs partition claimed", "hub", "audit", "partition", "1")
	es.Warn("write failed, retrying", "error", "401 Unauthorized")
	if got := lines(t, buf); len(got) != 0 {
		t.Fatalf("repeats written: %v", got)
	}
	if err := h.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := lines(t, buf)
	parts := map[string]bool{}
	for _, l := range got {
		if l[RepeatedKey] != 1.0 {
			t.Errorf("summary %v", l)
		}
		parts[fmt.Sprint(l["msg"], l["partition"], l["error"])] = true
	}
	if len(got) != 3 || len(parts) != 3 {
		t.Fatalf("want 3 separate summaries, got %v", got)
	}
}

// TestRateLimitIgnoresVolatileAttributes: counts, durations, times and
// stream positions change from one record of an event to the next; they
// do not make a new event.
func TestRateLimitIgnoresVolatileAttributes(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	log, h, buf := newLimited(time.Minute, clk.now)
	l := log.With("component", "startup")
	for i := range 6 {
		l.Error("outputs not ready; retrying", "attempt", i+1, "retry_in", (time.Duration(i) * time.Second).String(),
			"elapsed", time.Duration(i)*time.Second, "since", clk.now(), "pending", 10*i, "offset", 4711+i,
			"sequence_number", int64(i), "error", "elasticsearch unreachable")
		clk.advance(time.Second)
	}
	if got := lines(t, buf); len(got) != 1 || got[0]["attempt"] != 1.0 {
		t.Fatalf("want the first record only, got %v", got)
	}
	if err := h.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := lines(t, buf)
	if len(got) != 1 || got[0][RepeatedKey] != 5.0 || got[0]["attempt"] != 6.0 || got[0]["error"] != "elasticsearch unreachable" {
		t.Fatalf("want one summary of 5 with the last record's attributes, got %v", got)
	}
}

// TestRateLimitLeavesSelfLimitedRecords: a component that limits a
// persisting failure itself (output.elasticsearch.log_interval, the
// Kafka error_log_interval) writes it again after its own interval; the
// handler's longer interval must not swallow that line.
func TestRateLimitLeavesSelfLimitedRecords(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	log, _, buf := newLimited(time.Minute, clk.now)
	es := log.With("component", "sink.elasticsearch")
	kafka := log.With("component", "sink.kafka")
	src := log.With("component", "source.kafka")
	for i := range 3 {
		es.Warn("elasticsearch unreachable: connection refused", "kind", "unreachable", "repeats_since_last_log", 12*i,
			"action", "retrying with backoff; nothing is acknowledged until it succeeds")
		kafka.Error("kafka unavailable, retrying", "class", "authentication", "error", "SASL failed", "pending", 50, "next_log_within", "30s")
		src.Warn("kafka topic not readable; waiting for it", "error", "unknown topic", "next_warning_within", "30s")
		got := lines(t, buf)
		if len(got) != 3 {
			t.Fatalf("after %ds: want the three lines written then, got %d: %v", 30*i, len(got), got)
		}
		for _, l := range got {
			if l[RepeatedKey] != nil {
				t.Errorf("after %ds: summary %v", 30*i, l)
			}
		}
		clk.advance(30 * time.Second)
	}
}

// TestRateLimitUsesConfiguredInterval: the interval is the one configured
// (telemetry.log_repeat_interval), in the windows and in the summary.
func TestRateLimitUsesConfiguredInterval(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	log, _, buf := newLimited(5*time.Second, clk.now)
	log.Warn("same")
	clk.advance(3 * time.Second)
	log.Warn("same")
	if got := lines(t, buf); len(got) != 1 {
		t.Fatalf("want 1 line within the interval, got %v", got)
	}
	clk.advance(3 * time.Second)
	log.Warn("same")
	got := lines(t, buf)
	if len(got) != 2 || got[0][RepeatedKey] != 1.0 || got[0]["repeat_interval"] != float64(5*time.Second) || got[1][RepeatedKey] != nil {
		t.Fatalf("after 6s of a 5s interval: want summary and record, got %v", got)
	}
}

// blockingHandler blocks every summary until released, and tells when
// one arrives.
type blockingHandler struct {
	slog.Handler
	entered chan struct{}
	release chan struct{}
}

func (b *blockingHandler) Handle(ctx context.Context, r slog.Record) error {
	summary := false
	r.Attrs(func(a slog.Attr) bool {
		summary = summary || a.Key == RepeatedKey
		return true
	})
	if summary {
		b.entered <- struct{}{}
		<-b.release
	}
	return b.Handler.Handle(ctx, r)
}

// TestStartFlushesWhenContextEnds: the end of Start's context writes what
// is held back, without waiting for the interval or for Close.
func TestStartFlushesWhenContextEnds(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	log, h, buf := newLimited(time.Hour, clk.now)
	ctx, cancel := context.WithCancel(context.Background())
	h.Start(ctx)
	defer h.Close(context.Background())
	log.Info("same")
	log.Info("same")
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	var got []map[string]any
	for len(got) < 2 && time.Now().Before(deadline) {
		got = append(got, lines(t, buf)...)
		time.Sleep(10 * time.Millisecond)
	}
	if len(got) != 2 || got[1][RepeatedKey] != 1.0 {
		t.Fatalf("want record and summary once the context ended, got %v", got)
	}
}

// stopped reports whether every goroutine Start started has returned
// within a while.
func stopped(h *Handler) bool {
	done := make(chan struct{})
	go func() { h.run.runs.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

// TestCloseWaitsForStart: Close stops what Start started and returns only
// when it has returned, even while it is writing, so that whoever owns the
// handler knows no line is written after Close.
func TestCloseWaitsForStart(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	buf := &syncbuf.Buffer{}
	inner := &blockingHandler{slog.NewJSONHandler(buf, nil), make(chan struct{}, 1), make(chan struct{})}
	h := NewHandler(inner, Options{RepeatInterval: 20 * time.Millisecond, Now: clk.now})
	log := slog.New(h)
	h.Start(context.Background())

	log.Info("tick")
	log.Info("tick")
	clk.advance(time.Second)
	<-inner.entered // Start's goroutine is writing the summary
	closed := make(chan error, 1)
	go func() { closed <- h.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while Start's goroutine was still writing", err)
	case <-time.After(50 * time.Millisecond):
		// A correct Close cannot have returned; a wrong one would have.
	}
	close(inner.release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if got := lines(t, buf); len(got) != 2 || got[1][RepeatedKey] != 1.0 {
		t.Fatalf("want record and summary when Close returns, got %v", got)
	}
	if !stopped(h) {
		t.Fatal("Start's goroutine still running after Close")
	}
}

// TestCloseWithoutStart: Close flushes what is held back, a later Start
// starts nothing, and records logged after Close are written, not held
// for a flush that will not come.
func TestCloseWithoutStart(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	log, h, buf := newLimited(time.Minute, clk.now)
	log.Info("same")
	log.Info("same")
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := lines(t, buf); len(got) != 2 || got[1][RepeatedKey] != 1.0 {
		t.Fatalf("want record and summary, got %v", got)
	}
	h.Start(context.Background()) // starts nothing: the handler is closed
	if !stopped(h) {
		t.Fatal("Start after Close left a goroutine running")
	}
	log.Info("same")
	log.Info("same")
	if got := lines(t, buf); len(got) != 2 {
		t.Fatalf("want both records after Close, got %v", got)
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestVolatileAttributes(t *testing.T) {
	cases := []struct {
		attrs    []slog.Attr
		volatile bool
	}{
		{[]slog.Attr{
			slog.Int("attempt", 3), slog.Int("attempts", 3), slog.String("retry_in", "1.5s"), slog.String("retryIn", "2s"),
			slog.Int("pending", 50), slog.Int64("offset", 4711), slog.Int64("sequence_number", 12), slog.Int("n", 1),
			slog.String("next_log_within", "30s"), slog.Int("partition_lag", 9), slog.Duration("wait", time.Second),
			slog.Duration("anything", time.Second), slog.Time("when", time.Unix(0, 0)), slog.Int("Count", 2),
			slog.String("failed_at", "2026-11-25T09:00:00Z"), slog.Int("held_bytes", 1<<20),
		}, true},
		{[]slog.Attr{
			slog.String("partition", "0"), slog.Int("partition", 1), slog.String("component", "sink.kafka"),
			slog.String("instance", "a"), slog.String("error", "connection refused"), slog.Int("status", 503),
			slog.String("hub", "audit"), slog.String("topic", "audit"), slog.Int("generation", 3), slog.Bool("on", true),
			slog.String("kind", "unreachable"), slog.String("source", "eventhubs audit partition 3 offset 4711"),
			slog.Group("request", slog.String("path", "/_bulk")),
		}, false},
	}
	for _, c := range cases {
		for _, a := range c.attrs {
			if got := volatile(a); got != c.volatile {
				t.Errorf("volatile(%v) = %v, want %v", a, got, c.volatile)
			}
		}
	}
}
