package bulk

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Transport sends each request through an http.Transport of its node's
// host. With a pinned fingerprint Go's own verification is off, and the
// callback that replaces it is not told which host a connection is for
// (for an IP address not even through SNI), so each host gets a transport
// whose callback checks the certificate against that host.
type Transport struct {
	base *http.Transport
	pin  func(host string) func(tls.ConnectionState) error // nil: base serves every host

	mu     sync.Mutex
	byHost map[string]*http.Transport
}

// NewTransport returns the transport of an engine client: TLS verification
// as configured, idle connections for maxInFlight requests and headers
// awaited at most responseTimeout.
func NewTransport(c TLSConfig, maxInFlight int, responseTimeout time.Duration) (*Transport, error) {
	tlsCfg, pin, err := tlsConfig(c)
	if err != nil {
		return nil, err
	}
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConnsPerHost:   maxInFlight + 2,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: responseTimeout,
		ForceAttemptHTTP2:     true,
	}
	return &Transport{base: base, pin: pin}, nil
}

// RoundTrip sends req through the transport of its host.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.forHost(req.URL.Hostname()).RoundTrip(req)
}

func (t *Transport) forHost(host string) *http.Transport {
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
func (t *Transport) CloseIdleConnections() {
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
