package elasticsearch

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/esdouble"
)

// Double: it requires credentials, which the test nodes (no security plugin) do not.
func TestCredentialsAreSentAndNeverShown(t *testing.T) {
	const pw = "s3cr3t-Pa55"
	const key = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
	const token = "AAEAAWVsYXN0aWMvZmxlZXQtc2VydmVyL3Rva2VuLTE"
	cases := []struct {
		name string
		set  func(*Config)
		want string
		hide string
	}{
		{"basic", func(c *Config) { c.Username, c.Password = "sspr", secret.New(pw) },
			"Basic " + base64.StdEncoding.EncodeToString([]byte("sspr:"+pw)), pw},
		{"api key", func(c *Config) { c.APIKey = secret.New(key) }, "APIKey " + key, key},
		{"bearer", func(c *Config) { c.BearerToken = secret.New(token) }, "Bearer " + token, token},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := esdouble.New()
			defer d.Close()
			cfg := testConfig(d)
			c.set(&cfg)
			d.RequireAuthorization(c.want)
			logs := &syncbuf.Buffer{}
			s := newSink(t, cfg, logs)
			if err := s.Write(tctx(t), events("auth", 3, nov)); err != nil {
				t.Fatalf("write with the right credentials: %v", err)
			}
			if _, err := Setup(tctx(t), cfg, newLogger(logs)); err != nil {
				t.Fatalf("setup with the right credentials: %v", err)
			}

			// Wrong credentials: the errors, logs, readiness and config
			// dumps must not carry the secret.
			d.RequireAuthorization("something else")
			_, setupErr := Setup(tctx(t), cfg, newLogger(logs))
			checkErr := Check(tctx(t), cfg)
			ctx, cancel := contextWithTimeout(300 * time.Millisecond)
			defer cancel()
			writeErr := s.Write(ctx, events("auth2", 1, nov))
			shown := fmt.Sprintf("%v|%v|%v|%v|%+v|%#v|%s", setupErr, checkErr, writeErr, s.Ready(), cfg, cfg, logs.String())
			if strings.Contains(shown, c.hide) {
				t.Errorf("secret shown:\n%s", shown)
			}
			if setupErr == nil || !strings.Contains(setupErr.Error(), "401") || s.Ready() == nil || !strings.Contains(s.Ready().Error(), "401") {
				t.Errorf("the 401 is not reported: setup=%v ready=%v", setupErr, s.Ready())
			}
		})
	}
}

// Double: the test nodes serve plain HTTP.
func TestTLSVerification(t *testing.T) {
	d := esdouble.NewTLS()
	defer d.Close()
	cert := d.Certificate()
	sum := sha256.Sum256(cert.Raw)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	colons := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(colons); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(colons[i : i+2])
	}
	wrong := sha256.Sum256([]byte("other"))

	cases := []struct {
		name string
		tls  TLSConfig
		ok   bool
	}{
		{"system roots only", TLSConfig{}, false},
		{"ca file", TLSConfig{CAFile: caFile}, true},
		{"fingerprint", TLSConfig{CAFingerprint: hex.EncodeToString(sum[:])}, true},
		{"fingerprint with colons", TLSConfig{CAFingerprint: b.String()}, true},
		{"wrong fingerprint", TLSConfig{CAFingerprint: hex.EncodeToString(wrong[:])}, false},
		{"verification off", TLSConfig{InsecureSkipVerify: true}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(d)
			cfg.TLS = c.tls
			s := newSink(t, cfg, nil)
			ctx, cancel := contextWithTimeout(2 * time.Second)
			defer cancel()
			err := s.Write(ctx, events("tls-"+strings.ReplaceAll(c.name, " ", "-"), 1, nov))
			if c.ok && err != nil {
				t.Errorf("write: %v", err)
			}
			if !c.ok {
				if err == nil {
					t.Error("write succeeded without a trusted certificate")
				} else if r := s.Ready(); r == nil || !strings.Contains(r.Error(), "certificate") && !strings.Contains(r.Error(), "tls") {
					t.Errorf("Ready() = %v, want the TLS failure", r)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	if errs := DefaultConfig().Validate(); len(errs) != 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
	cases := []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.Addresses = nil }, "addresses: "},
		{func(c *Config) { c.Addresses = []string{"https://u:p@h:9200"} }, "addresses[0]: must not contain credentials"},
		{func(c *Config) { c.Addresses = []string{"ftp://h"} }, "addresses[0]: scheme"},
		{func(c *Config) { c.Username = "u" }, "password: required"},
		{func(c *Config) { c.APIKey, c.BearerToken = secret.New("a"), secret.New("b") }, "api_key: set only one"},
		{func(c *Config) { c.TLS.CAFingerprint = "abc" }, "tls.ca_fingerprint: "},
		{func(c *Config) { c.TLS.InsecureSkipVerify, c.TLS.CAFile = true, "x" }, "tls.insecure_skip_verify: "},
		{func(c *Config) { c.Index.Prefix = "Entra" }, "index.prefix: must be lowercase"},
		{func(c *Config) { c.Index.Prefix = "logs-entra" }, `index.prefix: index names "logs-entra-2026.01.01" would match`},
		{func(c *Config) { c.Index.Prefix = "" }, "index.prefix: must not be empty"},
		{func(c *Config) { c.Index.Granularity = "week" }, "index.granularity: "},
		{func(c *Config) { c.Bulk.MaxDocs = 0 }, "bulk.max_docs: "},
		{func(c *Config) { c.Bulk.MaxBytes = 10 }, "bulk.max_bytes: "},
		{func(c *Config) { c.Bulk.MaxInFlight = 0 }, "bulk.max_in_flight: "},
		{func(c *Config) { c.Retry.MaxBackoff = time.Millisecond }, "retry.max_backoff: "},
		{func(c *Config) { c.ILM.RetentionDays = 0 }, "ilm.retention_days: "},
		{func(c *Config) { c.RequestTimeout = 0 }, "request_timeout: "},
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		c.set(&cfg)
		errs := cfg.Validate()
		found := false
		for _, e := range errs {
			if strings.HasPrefix(e.Error(), c.want) {
				found = true
			}
		}
		if !found {
			t.Errorf("want an error starting %q, got %v", c.want, errors.Join(errs...))
		}
	}
	cfg := DefaultConfig()
	cfg.Bulk.MaxDocs = 0
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "bulk.max_docs") {
		t.Errorf("New with an invalid config: %v", err)
	}
}

// Double: it echoes the request like a hostile proxy, which a node never does.
// A proxy (or anything in front of the node) may repeat the request in its
// error answer, Authorization header included. No form of a credential
// may reach an error, a rejection, the readiness reason or the log.
func TestEchoedCredentialsNeverShow(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	const pw = "s3cr3t-Pa55<&>"
	const keyPlain = "VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw"
	token := b64("elastic/fleet-server/token-1:servicetokensecret22")
	creds := []struct {
		name  string
		set   func(*Config)
		forms []string
	}{
		{"basic", func(c *Config) { c.Username, c.Password = "sspr", secret.New(pw) },
			[]string{pw, b64("sspr:" + pw), base64.RawURLEncoding.EncodeToString([]byte("sspr:" + pw)), b64(pw)}},
		{"api key", func(c *Config) { c.APIKey = secret.New(b64(keyPlain)) },
			[]string{b64(keyPlain), keyPlain, "ui2lp2axTNmsyakw9tvNnw"}},
		{"bearer", func(c *Config) { c.BearerToken = secret.New(token) },
			[]string{token, "servicetokensecret22", b64(token)}},
	}
	echoes := []struct {
		status   int
		envelope bool
	}{{400, true}, {401, true}, {403, true}, {500, true}, {400, false}, {502, false}}
	for _, c := range creds {
		for _, e := range echoes {
			t.Run(fmt.Sprintf("%s/%d/envelope=%v", c.name, e.status, e.envelope), func(t *testing.T) {
				d := esdouble.New()
				defer d.Close()
				cfg := testConfig(d)
				c.set(&cfg)
				d.EchoRequests(e.status, e.envelope)
				logs := &syncbuf.Buffer{}
				_, setupErr := Setup(tctx(t), cfg, newLogger(logs))
				checkErr := Check(tctx(t), cfg)
				s := newSink(t, cfg, logs)
				ctx, cancel := contextWithTimeout(300 * time.Millisecond)
				defer cancel()
				writeErr := s.Write(ctx, events("echo", 2, nov))
				shown := fmt.Sprintf("setup: %v\ncheck: %v\nwrite: %v\nready: %v\n", setupErr, checkErr, writeErr, s.Ready())
				if rej, ok := stream.AsRejected(writeErr); ok {
					for _, r := range rej.Docs {
						shown += "rejection: " + r.Err.Error() + "\n"
					}
				}
				shown += logs.String()
				for _, f := range c.forms {
					if strings.Contains(shown, f) {
						t.Errorf("%q shown:\n%s", f, shown)
					}
				}
				// Without the echo reaching the messages the test proves nothing.
				if !strings.Contains(shown, "Authorization: ") {
					t.Errorf("the echo does not show in any message:\n%s", shown)
				}
			})
		}
	}
}
