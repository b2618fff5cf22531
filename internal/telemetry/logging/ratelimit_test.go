package logging

import (
	"context"
	"encoding/json"
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

func TestRunWritesDueSummaries(t *testing.T) {
	// The windows follow the fake clock, so the three records share one
	// however slow the machine; Run's ticker is real.
	clk := &fakeClock{t: time.Unix(0, 0)}
	log, h, buf := newLimited(20*time.Millisecond, clk.now)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.Run(ctx) }()
	defer func() { cancel(); <-done }()

	log.Info("tick")
	log.Info("tick")
	log.Info("tick")
	clk.advance(time.Second)
	// No further record arrives; Run must write the summary on its own.
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
