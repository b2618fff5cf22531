package webhook

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// endpoint answers the statuses in turn (then 204) and records each request.
type endpoint struct {
	mu       sync.Mutex
	statuses []int
	got      []*http.Request
	bodies   []string
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, r)
	e.bodies = append(e.bodies, string(b))
	st := http.StatusNoContent
	if len(e.statuses) > 0 {
		st, e.statuses = e.statuses[0], e.statuses[1:]
	}
	w.WriteHeader(st)
}

func tlsEndpoint(t *testing.T, statuses ...int) (*endpoint, Config) {
	e := &endpoint{statuses: statuses}
	srv := httptest.NewTLSServer(e)
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	c := DefaultConfig()
	c.URL = srv.URL + "/hook"
	c.CAFile = ca
	c.Retry = retry.Config{InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	return e, c
}

func TestSendRetriesUntilAccepted(t *testing.T) {
	cases := []struct {
		name     string
		statuses []int
		attempts int
		wantErr  string
		requests int
	}{
		{"accepted at once", nil, 5, "", 1},
		{"503 then success", []int{503}, 5, "", 2},
		{"429 and 500 then success", []int{429, 500}, 5, "", 3},
		{"gives up after max_attempts", []int{503, 503, 503}, 3, "status 503", 3},
		{"400 is not retried", []int{400}, 5, "status 400 (not retried)", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, cfg := tlsEndpoint(t, c.statuses...)
			cfg.MaxAttempts = c.attempts
			cfg.BearerToken = secret.New("tok-123")
			cfg.Headers = map[string]string{"X-Tenant": "hdr-secret"}
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Send(context.Background(), "abc123", []byte(`{"event":{"id":"abc123"}}`))
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("err %v, want %q", err, c.wantErr)
			}
			if len(e.got) != c.requests {
				t.Fatalf("%d requests, want %d", len(e.got), c.requests)
			}
			for i, r := range e.got {
				if r.Method != http.MethodPost || r.URL.Path != "/hook" || r.Header.Get("Idempotency-Key") != "abc123" ||
					r.Header.Get("Authorization") != "Bearer tok-123" || r.Header.Get("X-Tenant") != "hdr-secret" ||
					r.Header.Get("Content-Type") != "application/json" || e.bodies[i] != `{"event":{"id":"abc123"}}` {
					t.Errorf("request %d: %s %s %v %q", i, r.Method, r.URL, r.Header, e.bodies[i])
				}
			}
		})
	}
}

func TestSendVerifiesTLS(t *testing.T) {
	_, cfg := tlsEndpoint(t)
	cfg.CAFile = ""
	cfg.MaxAttempts = 1
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), "x", []byte("{}")); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an unknown certificate was accepted: %v", err)
	}
}

func TestErrorsCarryNoSecret(t *testing.T) {
	cfg := DefaultConfig()
	cfg.URL = "https://127.0.0.1:1/hook"
	cfg.MaxAttempts = 1
	cfg.BearerToken = secret.New("tok-123")
	s, _ := New(cfg)
	err := s.Send(context.Background(), "x", []byte("{}"))
	if err == nil || strings.Contains(err.Error(), "tok-123") {
		t.Fatalf("err %v", err)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		url, want string
	}{
		{"", ""},
		{"https://hooks.example/x", ""},
		{"ftp://hooks.example/x", "url: scheme"},
		{"https://user:pw@hooks.example/x", "url: must not carry credentials"},
		{"/relative", "url: must be an absolute"},
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		cfg.URL = c.url
		errs := cfg.Validate()
		if c.want == "" && len(errs) > 0 || c.want != "" && (len(errs) == 0 || !strings.HasPrefix(errs[0].Error(), c.want)) {
			t.Errorf("%q: %v, want %q", c.url, errs, c.want)
		}
	}
}
