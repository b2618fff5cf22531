package telemetry

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/telemetrytest"
)

func TestConfigValidate(t *testing.T) {
	if errs := DefaultConfig().Validate(); len(errs) != 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
	off := DefaultConfig()
	off.Address, off.ReadyStallTimeout, off.LogRepeatInterval = "", 0, 0
	if errs := off.Validate(); len(errs) != 0 {
		t.Fatalf("everything off is valid, got %v", errs)
	}
	bad := Config{Address: "9464", ReadyStallTimeout: -time.Second, ShutdownTimeout: 0, LogRepeatInterval: -1}
	errs := bad.Validate()
	want := []string{"address:", "ready_stall_timeout:", "shutdown_timeout:", "log_repeat_interval:"}
	if len(errs) != len(want) {
		t.Fatalf("got %v, want one error per key %v", errs, want)
	}
	for i, e := range errs {
		if !strings.HasPrefix(e.Error(), want[i]) {
			t.Errorf("error %d %q does not start with %q", i, e, want[i])
		}
	}
	for _, a := range []string{"127.0.0.1:99999", "bad host!:80", "[::1]:x"} {
		c := DefaultConfig()
		c.Address = a
		if errs := c.Validate(); len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "address:") {
			t.Errorf("address %q: %v", a, errs)
		}
	}
	short := DefaultConfig()
	short.ReadyStallTimeout = time.Millisecond
	if errs := short.Validate(); len(errs) != 1 {
		t.Errorf("1ms stall timeout accepted: %v", errs)
	}
}

func TestServerAddressInUse(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Address = "127.0.0.1:0"
	a := New(cfg, nil, nil)
	if err := a.Server.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Server.Shutdown(context.Background())
	cfg.Address = a.Server.Addr()
	b := New(cfg, nil, nil)
	if err := b.Server.Start(); err == nil {
		_ = b.Server.Shutdown(context.Background())
		t.Fatal("second server on the same port started")
	}
	// An empty address serves nothing and stops cleanly.
	cfg.Address = ""
	c := New(cfg, nil, nil)
	if err := c.Server.Start(); err != nil || c.Server.Addr() != "" {
		t.Fatalf("disabled server: %v %q", err, c.Server.Addr())
	}
	if err := c.Server.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestServerEndpoints: /healthz answers while the process lives, /readyz
// follows the registered components with their reasons cleaned of
// secrets, /metrics serves the metrics with the readiness gauges, and
// nothing answers after Shutdown.
func TestServerEndpoints(t *testing.T) {
	red := secret.NewRedactor()
	red.Add("es-password-123")
	cfg := DefaultConfig()
	cfg.Address = "127.0.0.1:0"
	tel := New(cfg, nil, red)
	var mu sync.Mutex
	var sinkErr error
	tel.Health.AddFunc("sink.elasticsearch", func() error {
		mu.Lock()
		defer mu.Unlock()
		return sinkErr
	})
	if err := tel.Server.Start(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + tel.Server.Addr()
	if code, body := telemetrytest.Get(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := telemetrytest.Get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	mu.Lock()
	sinkErr = errors.New(`elasticsearch: Post "https://elastic:es-password-123@es:9200/_bulk": connection refused`)
	mu.Unlock()
	code, body := telemetrytest.Get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "sink.elasticsearch: not ready: elasticsearch: Post") || strings.Contains(body, "es-password-123") {
		t.Fatalf("/readyz with the sink down: %d %q", code, body)
	}
	if code, body := telemetrytest.Get(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, `sspr_exporter_component_ready{component="sink.elasticsearch"} 0`) || !strings.Contains(body, "sspr_exporter_records_total 0") {
		t.Fatalf("/metrics: %d %q", code, body)
	}
	if err := tel.Server.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("server still answers after Shutdown")
	}
}
