// Package webhook posts alerts as JSON to an HTTP endpoint, one request
// per alert, retried until the endpoint accepts it: at least once, with
// the alert id in the Idempotency-Key header so the receiver can drop a
// repeat.
package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// Config is the [detect.output.webhook] section.
type Config struct {
	URL string `toml:"url"` // https://...; empty: no webhook
	// Headers are sent with every request; their values are treated as
	// secrets (never logged, taken out of errors).
	Headers     map[string]string `toml:"headers"`
	BearerToken secret.String     `toml:"bearer_token"` // sent as Authorization: Bearer
	CAFile      string            `toml:"ca_file"`      // extra roots for the endpoint's certificate
	Timeout     time.Duration     `toml:"timeout"`      // per request
	MaxAttempts int               `toml:"max_attempts"` // per alert, before the delivery fails
	Retry       retry.Config      `toml:"retry"`
}

// DefaultConfig returns the defaults: no URL, 10s per request, 5 attempts.
func DefaultConfig() Config {
	return Config{Timeout: 10 * time.Second, MaxAttempts: 5, Retry: retry.Config{InitialBackoff: time.Second, MaxBackoff: 30 * time.Second}}
}

// Validate checks the section when a URL is set.
func (c Config) Validate() []error {
	if c.URL == "" {
		return nil
	}
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || u.Host == "":
		errs = append(errs, errors.New("url: must be an absolute http or https URL"))
	case u.Scheme != "https" && u.Scheme != "http":
		errs = append(errs, fmt.Errorf("url: scheme must be https or http (got %q)", u.Scheme))
	case u.User != nil:
		errs = append(errs, errors.New("url: must not carry credentials; use bearer_token or headers"))
	}
	for k := range c.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") {
			errs = append(errs, fmt.Errorf("headers: %q is not a header name", k))
		}
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max_attempts: must be at least 1 (got %d)", c.MaxAttempts))
	}
	for _, e := range c.Retry.Validate() {
		errs = append(errs, fmt.Errorf("retry.%w", e))
	}
	return errs
}

// Sender posts to one endpoint.
type Sender struct {
	cfg    Config
	client *http.Client
	red    *secret.Redactor
}

// New returns a sender for cfg; TLS certificates are always verified.
func New(cfg Config) (*Sender, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("webhook: %w", errors.Join(errs...))
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("webhook ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("webhook ca_file %s: no certificate found", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	red := secret.NewRedactor(cfg.BearerToken.Reveal())
	for _, v := range cfg.Headers {
		red.Add(v)
	}
	return &Sender{cfg: cfg, client: &http.Client{Transport: tr, Timeout: cfg.Timeout}, red: red}, nil
}

// Send posts body, retrying a failed request (no answer, 408, 429 or 5xx)
// up to MaxAttempts; any other answer outside 2xx fails at once.
func (s *Sender) Send(ctx context.Context, id string, body []byte) error {
	b := s.cfg.Retry.Backoff()
	var last error
	for attempt := 1; ; attempt++ {
		again, err := s.post(ctx, id, body)
		if err == nil {
			return nil
		}
		last = err
		if !again || attempt >= s.cfg.MaxAttempts {
			break
		}
		if !retry.Wait(ctx, b.Next()) {
			return fmt.Errorf("webhook alert %s: %w (after %v)", id, context.Cause(ctx), last)
		}
	}
	return fmt.Errorf("webhook alert %s: %w", id, last)
}

// post makes one attempt and says whether another may succeed.
func (s *Sender) post(ctx context.Context, id string, body []byte) (again bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, errors.New(s.red.Redact(err.Error()))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", id)
	req.Header.Set("User-Agent", "sspr-exporter")
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	if !s.cfg.BearerToken.IsZero() {
		req.Header.Set("Authorization", "Bearer "+s.cfg.BearerToken.Reveal())
	}
	res, err := s.client.Do(req)
	if err != nil {
		return ctx.Err() == nil, errors.New(s.red.Redact(err.Error()))
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	switch st := res.StatusCode; {
	case st >= 200 && st < 300:
		return false, nil
	case st == http.StatusRequestTimeout || st == http.StatusTooManyRequests || st >= 500:
		return true, errors.New("status " + strconv.Itoa(st))
	default:
		return false, errors.New("status " + strconv.Itoa(st) + " (not retried)")
	}
}

// Close releases the idle connections.
func (s *Sender) Close() { s.client.CloseIdleConnections() }
