package elasticsearch

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk/bulktest"
	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/esdouble"
)

// outage is how long simulated outages last; SSPR_ES_OUTAGE overrides it.
func outage(t testing.TB) time.Duration {
	if s := os.Getenv("SSPR_ES_OUTAGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("SSPR_ES_OUTAGE: %v", err)
		}
		return d
	}
	return 2 * time.Second
}

func testConfig(d *esdouble.Double) Config {
	cfg := DefaultConfig()
	cfg.Addresses = []string{d.URL()}
	cfg.Retry = retry.Config{InitialBackoff: 5 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	cfg.RequestTimeout = 10 * time.Second
	cfg.LogInterval = 200 * time.Millisecond
	return cfg
}

func newLogger(w *syncbuf.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newSink(t testing.TB, cfg Config, logs *syncbuf.Buffer) *Sink {
	t.Helper()
	var l *slog.Logger
	if logs != nil {
		l = newLogger(logs)
	}
	s, err := New(cfg, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// setupDouble starts a double with the exporter's templates installed, so
// it enforces the real mappings.
func setupDouble(t testing.TB) (*esdouble.Double, Config) {
	t.Helper()
	d := esdouble.New()
	t.Cleanup(d.Close)
	cfg := testConfig(d)
	if _, err := Setup(context.Background(), cfg, nil); err != nil {
		t.Fatalf("setup: %v", err)
	}
	return d, cfg
}

func event(id string, at time.Time) ecs.Event { return bulktest.Event(id, at) }

func events(prefix string, n int, at time.Time) []ecs.Event { return bulktest.Events(prefix, n, at) }

// patience bounds every wait of a test, so a broken sink that retries
// forever fails the test instead of hanging it.
const patience = 60 * time.Second

// tctx is a context for one test's writes, ending after patience.
func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds, for at most patience.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stillWriting fails the test when the Write that reports to done has
// returned while it must not (the cause of its retries is still there).
func stillWriting(t *testing.T, done <-chan error, while string) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("Write returned while %s: %v", while, err)
	default:
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
