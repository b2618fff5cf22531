// Package kafkaconn holds the connection settings every Kafka component
// shares: SASL (PLAIN, SCRAM-SHA-256/512) and TLS, with their validation and
// the kafka-go dialer and transport built from them. The keys match those of
// the Kafka sink, so one [sasl] / [tls] block reads the same everywhere.
package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	kgo "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// SASL mechanisms.
const (
	MechanismPlain       = "plain"
	MechanismSCRAMSHA256 = "scram-sha-256"
	MechanismSCRAMSHA512 = "scram-sha-512"
)

// SASLConfig selects SASL authentication.
type SASLConfig struct {
	// Mechanism is "" (no SASL), plain, scram-sha-256 or scram-sha-512.
	Mechanism string        `toml:"mechanism"`
	Username  string        `toml:"username"`
	Password  secret.String `toml:"password"`
}

// TLSConfig configures TLS to the brokers.
type TLSConfig struct {
	Enabled bool `toml:"enabled"`
	// CAFile is a PEM bundle of CAs to trust instead of the system pool.
	CAFile string `toml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// ServerName overrides the name verified in the broker certificate.
	ServerName string `toml:"server_name"`
	// InsecureSkipVerify turns certificate verification off.
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
}

// ValidateBrokers checks a bootstrap list, each message starting with key.
func ValidateBrokers(key string, brokers []string) []error {
	var errs []error
	if len(brokers) == 0 {
		errs = append(errs, fmt.Errorf("%s: at least one broker (host:port) is required", key))
	}
	for i, b := range brokers {
		if host, port, err := net.SplitHostPort(b); err != nil || port == "" || host == "" {
			errs = append(errs, fmt.Errorf("%s[%d]: %q is not host:port", key, i, b))
		}
	}
	return errs
}

// ValidateTopic reports whether name is a legal Kafka topic name.
func ValidateTopic(name string) bool {
	if name == "" || len(name) > 249 || name == "." || name == ".." {
		return false
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '.' && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

// Validate returns every problem of the SASL and TLS settings; messages
// start with "sasl." or "tls." (callers add their own prefix when nested).
func Validate(s SASLConfig, t TLSConfig) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch s.Mechanism {
	case "":
		if s.Username != "" || !s.Password.IsZero() {
			add("sasl.mechanism: required when sasl.username or sasl.password is set")
		}
	case MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		if s.Username == "" {
			add("sasl.username: required with sasl.mechanism %q", s.Mechanism)
		}
		if s.Password.IsZero() {
			add("sasl.password: required with sasl.mechanism %q", s.Mechanism)
		}
		if !t.Enabled && s.Mechanism == MechanismPlain {
			add("tls.enabled: must be true with sasl.mechanism \"plain\" (the password would cross the network in clear)")
		}
	default:
		add("sasl.mechanism: %q must be empty, plain, scram-sha-256 or scram-sha-512", s.Mechanism)
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		add("tls.cert_file: tls.cert_file and tls.key_file must be set together")
	}
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify) {
		add("tls.enabled: must be true when other tls settings are given")
	}
	for _, f := range []struct{ key, path string }{{"tls.ca_file", t.CAFile}, {"tls.cert_file", t.CertFile}, {"tls.key_file", t.KeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			add("%s: %v", f.key, err)
		}
	}
	return errs
}

// TLS builds the client TLS configuration, or nil when TLS is off.
func TLS(c TLSConfig) (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // only when the user turns verification off
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: no PEM certificate in %s", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// SASL builds the SASL mechanism, or nil when SASL is off.
func SASL(c SASLConfig) (sasl.Mechanism, error) {
	switch c.Mechanism {
	case "":
		return nil, nil
	case MechanismPlain:
		return plain.Mechanism{Username: c.Username, Password: c.Password.Reveal()}, nil
	case MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		algo := scram.SHA256
		if c.Mechanism == MechanismSCRAMSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, c.Username, c.Password.Reveal())
		if err != nil {
			// The error comes from SASLprep of the name or password; it
			// must never carry the values.
			return nil, errors.New("sasl: username or password is not valid SASLprep text")
		}
		return m, nil
	}
	return nil, fmt.Errorf("sasl.mechanism: unknown %q", c.Mechanism)
}

// Dialer builds the kafka-go dialer that consumer groups and readers use.
func Dialer(clientID string, timeout time.Duration, s SASLConfig, t TLSConfig) (*kgo.Dialer, error) {
	tc, err := TLS(t)
	if err != nil {
		return nil, err
	}
	m, err := SASL(s)
	if err != nil {
		return nil, err
	}
	return &kgo.Dialer{
		ClientID:      clientID,
		Timeout:       timeout,
		DualStack:     true,
		KeepAlive:     30 * time.Second,
		TLS:           tc,
		SASLMechanism: m,
	}, nil
}

// Transport builds the kafka-go transport that Client and Writer use.
func Transport(clientID string, timeout time.Duration, s SASLConfig, t TLSConfig) (*kgo.Transport, error) {
	tc, err := TLS(t)
	if err != nil {
		return nil, err
	}
	m, err := SASL(s)
	if err != nil {
		return nil, err
	}
	return &kgo.Transport{
		ClientID:    clientID,
		DialTimeout: timeout,
		IdleTimeout: 5 * time.Minute,
		TLS:         tc,
		SASL:        m,
	}, nil
}

// Hint says what a user can do about errors that no retry will fix, or "".
func Hint(err error) string {
	switch {
	case errors.Is(err, kgo.SASLAuthenticationFailed):
		return " (check sasl.mechanism, sasl.username and sasl.password)"
	case errors.Is(err, kgo.UnsupportedSASLMechanism):
		return " (the broker does not offer sasl.mechanism)"
	case errors.Is(err, kgo.TopicAuthorizationFailed):
		return " (grant the exporter's principal READ and DESCRIBE on the topic)"
	case errors.Is(err, kgo.GroupAuthorizationFailed):
		return " (grant the exporter's principal READ on the consumer group)"
	case errors.Is(err, kgo.ClusterAuthorizationFailed):
		return " (the exporter's principal lacks a cluster permission)"
	case errors.Is(err, kgo.UnknownTopicOrPartition):
		return " (the topic does not exist, or the principal may not DESCRIBE it)"
	}
	return ""
}
