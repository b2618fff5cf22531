package app

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/health"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/esdouble"
)

func esConfig(t *testing.T, url string) config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.toml")
	toml := `[input]
type = "file"
[input.file]
paths = ["-"]
[output.file]
enabled = false
[output.elasticsearch]
enabled = true
setup_on_start = true
addresses = ["` + url + `"]
api_key = "startup-test-key-0451"
request_timeout = "2s"
[telemetry]
address = ""
`
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPrepareWaitsForOutputs: with Elasticsearch down at start the service
// keeps trying, reports not ready with the reason, and is ready once the
// cluster is back and set up.
func TestPrepareWaitsForOutputs(t *testing.T) {
	es := esdouble.New()
	defer es.Close()
	es.SetDown(true)
	cfg := esConfig(t, es.URL())
	var logs syncbuf.Buffer
	logger, _ := Logger(cfg, &logs)
	tel := telemetry.New(cfg.Telemetry, logger, nil)

	done := make(chan error, 1)
	go func() {
		done <- prepareWithRetry(context.Background(), cfg, logger, tel, startupBackoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond})
	}()
	// Wait for the first failed attempt to be reported, let a few more
	// go by, then bring the cluster back. (The log says it once: repeats
	// of the same error are summarised.)
	for !strings.Contains(logs.String(), "outputs not ready") {
		select {
		case err := <-done:
			t.Fatalf("returned while Elasticsearch was down: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	select {
	case err := <-done:
		t.Fatalf("returned while Elasticsearch was down: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if rep := tel.Health.Check(); rep.Ready || !notReady(rep, "startup") {
		t.Errorf("readiness while Elasticsearch is down = %+v, want startup not ready", rep)
	}
	es.SetDown(false)
	if err := <-done; err != nil {
		t.Fatalf("prepare after recovery: %v", err)
	}
	if rep := tel.Health.Check(); !rep.Ready {
		t.Errorf("readiness after start: %+v", rep)
	}
	if _, v := es.Policy("entra-sspr"); v == 0 {
		t.Error("the ILM policy was not installed once the cluster was back")
	}
	if strings.Contains(logs.String(), "startup-test-key-0451") {
		t.Error("the API key appeared in the log")
	}
}

// TestPrepareStopsOnCancel: a signal while waiting ends the wait with the
// last error.
func TestPrepareStopsOnCancel(t *testing.T) {
	es := esdouble.New()
	defer es.Close()
	es.SetDown(true)
	cfg := esConfig(t, es.URL())
	logger := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := prepareWithRetry(ctx, cfg, logger, telemetry.New(cfg.Telemetry, logger, nil), startupBackoff{Initial: 20 * time.Millisecond})
	if err == nil || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("err = %v, ctx = %v", err, ctx.Err())
	}
}

func notReady(rep health.Report, name string) bool {
	for _, c := range rep.Components {
		if c.Name == name {
			return !c.Ready && c.Reason != ""
		}
	}
	return false
}
