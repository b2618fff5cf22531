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
	"time"

	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// newClient builds a go-elasticsearch client with the sink's own retry
// policy (the client's is off) and TLS verification as configured.
func newClient(cfg Config) (*es.Client, *http.Transport, error) {
	tlsCfg, err := tlsConfig(cfg.TLS)
	if err != nil {
		return nil, nil, err
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConnsPerHost:   cfg.Bulk.MaxInFlight + 2,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.RequestTimeout,
		ForceAttemptHTTP2:     true,
	}
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

func tlsConfig(c TLSConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.InsecureSkipVerify {
		tc.InsecureSkipVerify = true
		return tc, nil
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CAFingerprint != "" {
		want, err := ParseFingerprint(c.CAFingerprint)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_fingerprint: %w", err)
		}
		roots := tc.RootCAs
		// Standard verification cannot know the pinned certificate; it is
		// done in VerifyConnection instead, with the pinned one as root and
		// the host name still checked.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyPinned(cs, want, roots)
		}
	}
	return tc, nil
}

func verifyPinned(cs tls.ConnectionState, want []byte, extraRoots *x509.CertPool) error {
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
	roots := x509.NewCertPool()
	roots.AddCert(pinned)
	inter := x509.NewCertPool()
	for _, cert := range cs.PeerCertificates[1:] {
		inter.AddCert(cert)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: cs.ServerName}); err != nil {
		if extraRoots == nil {
			return fmt.Errorf("tls: %w", err)
		}
		if _, err2 := leaf.Verify(x509.VerifyOptions{Roots: extraRoots, Intermediates: inter, DNSName: cs.ServerName}); err2 != nil {
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

// responseError reads the error envelope of a failed answer and describes
// it; the body is bounded so a proxy's HTML page cannot flood a log line.
func responseError(res *esapi.Response) (*esError, string) {
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	var e esError
	if json.Unmarshal(body, &env) == nil && len(env.Error) > 0 {
		if json.Unmarshal(env.Error, &e) != nil {
			// Some answers carry the error as a plain string.
			var s string
			if json.Unmarshal(env.Error, &s) == nil {
				e = esError{Type: "error", Reason: s}
			}
		}
	}
	desc := fmt.Sprintf("HTTP %d", res.StatusCode)
	if e.Type != "" {
		desc += " " + e.String()
	} else if t := strings.TrimSpace(string(body)); t != "" {
		if len(t) > 200 {
			t = t[:200] + "..."
		}
		desc += " " + t
	}
	return &e, desc
}
