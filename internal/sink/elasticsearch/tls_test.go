package elasticsearch

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/testserver/esdouble"
)

type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Elasticsearch security auto-configuration HTTP CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{cert: cert, key: key}
}

// leaf issues a server certificate for the names and addresses given; the
// chain it returns holds the CA too, as a node sends it.
func (ca testCA) leaf(t *testing.T, dns []string, ips ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "node-1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dns,
	}
	for _, ip := range ips {
		tpl.IPAddresses = append(tpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key}
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// Double: the test nodes serve plain HTTP.
// With tls.ca_fingerprint the pinned certificate is the trust anchor, but
// the node's certificate must still be issued for the host (name or IP
// address) of the URL: the pin says whom to trust, not that any
// certificate that CA signed will do for this node.
func TestTLSHostIsCheckedWithAPinnedCA(t *testing.T) {
	ca := newTestCA(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	pinCA := TLSConfig{CAFingerprint: fingerprint(ca.cert.Raw)}
	forIP := ca.leaf(t, nil, "127.0.0.1")
	otherName := ca.leaf(t, []string{"es.example.com"})
	otherIP := ca.leaf(t, nil, "10.1.2.3")
	forLocalhost := ca.leaf(t, []string{"localhost"})
	cases := []struct {
		name string
		cert tls.Certificate
		host string // in the URL, instead of 127.0.0.1
		tls  TLSConfig
		ok   bool
	}{
		{"pinned CA, IP address matches", forIP, "", pinCA, true},
		{"pinned CA, leaf for another name", otherName, "", pinCA, false},
		{"pinned CA, leaf for another IP address", otherIP, "", pinCA, false},
		{"pinned CA, host name matches", forLocalhost, "localhost", pinCA, true},
		{"pinned CA, host name differs", otherName, "localhost", pinCA, false},
		{"pinned leaf for another name", otherName, "", TLSConfig{CAFingerprint: fingerprint(otherName.Certificate[0])}, false},
		{"pinned CA and ca_file, leaf for another name", otherName, "", TLSConfig{CAFingerprint: fingerprint(ca.cert.Raw), CAFile: caFile}, false},
		{"ca_file, leaf for another name", otherName, "", TLSConfig{CAFile: caFile}, false},
		{"ca_file, IP address matches", forIP, "", TLSConfig{CAFile: caFile}, true},
		{"verification off, leaf for another name", otherName, "", TLSConfig{InsecureSkipVerify: true}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := esdouble.NewTLSWithCertificate(c.cert)
			defer d.Close()
			cfg := testConfig(d)
			if c.host != "" {
				u, _ := url.Parse(d.URL())
				u.Host = net.JoinHostPort(c.host, u.Port())
				cfg.Addresses = []string{u.String()}
			}
			cfg.TLS = c.tls
			s := newSink(t, cfg, nil)
			// A refused handshake is retried until the deadline: keep it short.
			wait := time.Second
			if c.ok {
				wait = patience
			}
			ctx, cancel := contextWithTimeout(wait)
			defer cancel()
			err := s.Write(ctx, events("tlshost", 1, nov))
			if c.ok && err != nil {
				t.Fatalf("write: %v (ready: %v)", err, s.Ready())
			}
			if c.ok {
				return
			}
			if err == nil {
				t.Fatal("write succeeded to a node whose certificate is for another host")
			}
			if r := s.Ready(); r == nil || !strings.Contains(r.Error(), "certificate") {
				t.Errorf("Ready() = %v, want the certificate problem", r)
			}
			if d.Stats().BulkRequests != 0 {
				t.Errorf("%d bulk requests reached a node that failed verification", d.Stats().BulkRequests)
			}
		})
	}
}
