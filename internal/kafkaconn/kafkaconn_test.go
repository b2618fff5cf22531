package kafkaconn

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

func TestValidate(t *testing.T) {
	if errs := Validate(SASLConfig{}, TLSConfig{}); len(errs) != 0 {
		t.Fatalf("no SASL, no TLS: %v", errs)
	}
	ok := SASLConfig{Mechanism: MechanismSCRAMSHA512, Username: "u", Password: secret.New("p")}
	if errs := Validate(ok, TLSConfig{Enabled: true}); len(errs) != 0 {
		t.Fatalf("scram over TLS: %v", errs)
	}
	cases := []struct {
		s    SASLConfig
		t    TLSConfig
		want string
	}{
		{SASLConfig{Mechanism: "gssapi"}, TLSConfig{}, "sasl.mechanism:"},
		{SASLConfig{Mechanism: MechanismPlain, Username: "u", Password: secret.New("p")}, TLSConfig{}, "tls.enabled: must be true with sasl.mechanism \"plain\""},
		{SASLConfig{Mechanism: MechanismSCRAMSHA256}, TLSConfig{}, "sasl.username: required"},
		{SASLConfig{Mechanism: MechanismSCRAMSHA256, Username: "u"}, TLSConfig{}, "sasl.password: required"},
		{SASLConfig{Username: "u"}, TLSConfig{}, "sasl.mechanism: required when"},
		{SASLConfig{}, TLSConfig{InsecureSkipVerify: true}, "tls.enabled: must be true"},
		{SASLConfig{}, TLSConfig{Enabled: true, CertFile: "c.pem"}, "tls.cert_file: tls.cert_file and tls.key_file"},
		{SASLConfig{}, TLSConfig{Enabled: true, CAFile: "/nonexistent/ca.pem"}, "tls.ca_file:"},
	}
	for _, c := range cases {
		var msgs []string
		for _, e := range Validate(c.s, c.t) {
			msgs = append(msgs, e.Error())
		}
		if !strings.Contains(strings.Join(msgs, "\n"), c.want) {
			t.Errorf("Validate(%+v, %+v) = %q, want %q", c.s.Mechanism, c.t, msgs, c.want)
		}
		if strings.Contains(strings.Join(msgs, "\n"), "p\"") {
			t.Errorf("a password appears in %q", msgs)
		}
	}
}

func TestBrokersAndTopics(t *testing.T) {
	if errs := ValidateBrokers("brokers", []string{"a:9092", "[::1]:9093"}); len(errs) != 0 {
		t.Fatal(errs)
	}
	if errs := ValidateBrokers("brokers", []string{"a", ":1"}); len(errs) != 2 || !strings.HasPrefix(errs[1].Error(), "brokers[1]:") {
		t.Fatalf("bad brokers: %v", errs)
	}
	if errs := ValidateBrokers("brokers", nil); len(errs) != 1 {
		t.Fatalf("no brokers: %v", errs)
	}
	for name, want := range map[string]bool{"insights-logs-auditlogs": true, "a.b_c": true, "": false, "..": false, "a b": false, strings.Repeat("x", 250): false} {
		if ValidateTopic(name) != want {
			t.Errorf("ValidateTopic(%q) = %v", name, !want)
		}
	}
}

func TestDialerAndTransport(t *testing.T) {
	d, err := Dialer("id", time.Second, SASLConfig{}, TLSConfig{})
	if err != nil || d.TLS != nil || d.SASLMechanism != nil || d.ClientID != "id" {
		t.Fatalf("plain dialer %+v: %v", d, err)
	}
	d, err = Dialer("id", time.Second, SASLConfig{Mechanism: MechanismSCRAMSHA256, Username: "u", Password: secret.New("p")}, TLSConfig{Enabled: true, ServerName: "kafka"})
	if err != nil || d.TLS == nil || d.TLS.ServerName != "kafka" || d.TLS.InsecureSkipVerify || d.SASLMechanism.Name() != "SCRAM-SHA-256" {
		t.Fatalf("scram dialer %+v: %v", d, err)
	}
	tr, err := Transport("id", time.Second, SASLConfig{Mechanism: MechanismPlain, Username: "u", Password: secret.New("p")}, TLSConfig{Enabled: true})
	if err != nil || tr.TLS == nil || tr.SASL.Name() != "PLAIN" {
		t.Fatalf("plain transport %+v: %v", tr, err)
	}
	bad := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bad, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Dialer("id", time.Second, SASLConfig{}, TLSConfig{Enabled: true, CAFile: bad}); err == nil || !strings.Contains(err.Error(), "tls.ca_file: no PEM certificate") {
		t.Fatalf("bad CA file: %v", err)
	}
}
