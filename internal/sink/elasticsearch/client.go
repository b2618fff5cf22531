package elasticsearch

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// newClient builds a go-elasticsearch client with the sink's own retry
// policy (the client's is off) and TLS verification as configured.
func newClient(cfg Config) (*es.Client, *transport, error) {
	tlsCfg, pin, err := tlsConfig(cfg.TLS)
	if err != nil {
		return nil, nil, err
	}
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConnsPerHost:   cfg.Bulk.MaxInFlight + 2,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.RequestTimeout,
		ForceAttemptHTTP2:     true,
	}
	tr := &transport{base: base, pin: pin}
	ec := es.Config{
		Addresses:    cfg.Addresses,
		CloudID:      cfg.CloudID,
		Username:     cfg.Username,
		Password:     cfg.Password.Reveal(),
		APIKey:       cfg.APIKey.Reveal(),
		ServiceToken: cfg.BearerToken.Reveal(),
		Transport:    tr,
		DisableRetry: true,
	}
	if cfg.CloudID != "" {
		ec.Addresses = nil
	}
	c, err := es.NewClient(ec)
	if err != nil {
		// The client's messages name addresses and the cloud id, never the
		// credentials, but say nothing more than needed anyway.
		return nil, nil, fmt.Errorf("elasticsearch client: %w", err)
	}
	return c, tr, nil
}

// transport sends each request through an http.Transport of its node's
// host. With a pinned fingerprint Go's own verification is off, and the
// callback that replaces it is not told which host a connection is for
// (for an IP address not even through SNI), so each host gets a transport
// whose callback checks the certificate against that host.
type transport struct {
	base *http.Transport
	pin  func(host string) func(tls.ConnectionState) error // nil: base serves every host

	mu     sync.Mutex
	byHost map[string]*http.Transport
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.forHost(req.URL.Hostname()).RoundTrip(req)
}

func (t *transport) forHost(host string) *http.Transport {
	if t.pin == nil {
		return t.base
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if tr := t.byHost[host]; tr != nil {
		return tr
	}
	tr := t.base.Clone()
	tr.TLSClientConfig.VerifyConnection = t.pin(host)
	if t.byHost == nil {
		t.byHost = map[string]*http.Transport{}
	}
	t.byHost[host] = tr
	return tr
}

// CloseIdleConnections closes the idle connections to every node.
func (t *transport) CloseIdleConnections() {
	t.base.CloseIdleConnections()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tr := range t.byHost {
		tr.CloseIdleConnections()
	}
}

// tlsConfig returns the TLS settings and, with tls.ca_fingerprint, the
// verification of a connection to a given host.
func tlsConfig(c TLSConfig) (*tls.Config, func(host string) func(tls.ConnectionState) error, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.InsecureSkipVerify {
		tc.InsecureSkipVerify = true
		return tc, nil, nil
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CAFingerprint == "" {
		return tc, nil, nil
	}
	want, err := ParseFingerprint(c.CAFingerprint)
	if err != nil {
		return nil, nil, fmt.Errorf("tls.ca_fingerprint: %w", err)
	}
	roots := tc.RootCAs
	// Standard verification cannot know the pinned certificate before the
	// handshake; it is done in VerifyConnection instead, with the pinned
	// one as root and the host still checked.
	tc.InsecureSkipVerify = true
	pin := func(host string) func(tls.ConnectionState) error {
		return func(cs tls.ConnectionState) error { return verifyPinned(cs, host, want, roots) }
	}
	return tc, pin, nil
}

// verifyPinned accepts the node's chain when a certificate in it has the
// pinned fingerprint, the leaf chains up to it (or to extraRoots), and the
// leaf is issued for host: a DNS name, or an IP address matched against
// the IP address SANs.
func verifyPinned(cs tls.ConnectionState, host string, want []byte, extraRoots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: node presented no certificate")
	}
	var pinned *x509.Certificate
	for _, cert := range cs.PeerCertificates {
		sum := sha256.Sum256(cert.Raw)
		if bytes.Equal(sum[:], want) {
			pinned = cert
			break
		}
	}
	if pinned == nil {
		return errors.New("tls: no certificate of the node matches tls.ca_fingerprint")
	}
	if host == "" {
		return errors.New("tls: no host to check the node's certificate against")
	}
	roots := x509.NewCertPool()
	roots.AddCert(pinned)
	inter := x509.NewCertPool()
	for _, cert := range cs.PeerCertificates[1:] {
		inter.AddCert(cert)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host}); err != nil {
		if extraRoots == nil {
			return fmt.Errorf("tls: %w", err)
		}
		if _, err2 := leaf.Verify(x509.VerifyOptions{Roots: extraRoots, Intermediates: inter, DNSName: host}); err2 != nil {
			return fmt.Errorf("tls: %w", err)
		}
	}
	return nil
}

// esError is the error object of Elasticsearch's answers.
type esError struct {
	Type     string   `json:"type"`
	Reason   string   `json:"reason"`
	CausedBy *esError `json:"caused_by,omitempty"`
}

func (e *esError) String() string {
	if e == nil || e.Type == "" {
		return ""
	}
	s := e.Type + ": " + e.Reason
	if e.CausedBy != nil && e.CausedBy.Reason != "" {
		s += " (caused by " + e.CausedBy.Type + ": " + e.CausedBy.Reason + ")"
	}
	return s
}

// failure is a failed answer's error, with every form of the configured
// credentials taken out: a proxy, or a node's own message, may repeat the
// request and its Authorization header.
type failure struct {
	Type   string // Elasticsearch's error type; "" when the body is not its error envelope
	Reason string // type, reason and cause, as Elasticsearch wrote them
	Desc   string // "HTTP <status>" and the reason, or the start of the body
}

// describeFailure reads the error envelope of a failed answer. The body
// is bounded so that a proxy's HTML page cannot flood a log line, and
// redacted before it is cut, so no part of a secret is left at the cut.
func describeFailure(status int, body io.Reader, red *secret.Redactor) failure {
	raw, _ := io.ReadAll(io.LimitReader(body, 64<<10))
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	var e esError
	if json.Unmarshal(raw, &env) == nil && len(env.Error) > 0 {
		if json.Unmarshal(env.Error, &e) != nil {
			// Some answers carry the error as a plain string.
			var s string
			if json.Unmarshal(env.Error, &s) == nil {
				e = esError{Type: "error", Reason: s}
			}
		}
	}
	f := failure{Desc: fmt.Sprintf("HTTP %d", status)}
	if e.Type != "" {
		f.Type, f.Reason = red.Redact(e.Type), red.Redact(e.String())
		f.Desc += " " + f.Reason
	} else if t := strings.TrimSpace(red.Redact(string(raw))); t != "" {
		if len(t) > 200 {
			t = strings.ToValidUTF8(t[:200], "") + "..."
		}
		f.Desc += " " + t
	}
	return f
}

// isElasticsearch reports whether an answer comes from an Elasticsearch
// node (every answer of a node carries the header), not from a proxy.
func isElasticsearch(h http.Header) bool { return h.Get("X-Elastic-Product") == "Elasticsearch" }

// redactor knows every credential of cfg in the forms it is configured
// and sent in.
func redactor(cfg Config) *secret.Redactor {
	vals := []string{cfg.Password.Reveal(), cfg.APIKey.Reveal(), cfg.BearerToken.Reveal()}
	if cfg.Username != "" && !cfg.Password.IsZero() {
		vals = append(vals, cfg.Username+":"+cfg.Password.Reveal())
	}
	return secret.NewRedactor(vals...)
}

// redactedError is err with the credentials taken out of its message; it
// unwraps to err, so errors.Is still sees a context's end.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redactErr(red *secret.Redactor, err error) error {
	if err == nil {
		return nil
	}
	if msg := red.Redact(err.Error()); msg != err.Error() {
		return &redactedError{msg: msg, err: err}
	}
	return err
}
