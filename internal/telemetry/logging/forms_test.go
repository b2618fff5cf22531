package logging_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/kafkaconn"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/secret/secrettest"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/logging"
)

// The passwords hold bytes whose standard and URL-safe base64 differ.
const (
	esUser, esPass   = "elastic", "Es>pass?w0rd~~"
	outUser, outPass = "sspr-out", "kafka-out>>pw??"
	inUser, inPass   = "sspr-in", "kafka-in-pw~~>"
	dlUser, dlPass   = "sspr-dl", "dl-pw-<<>>??"
	proxyUser        = "proxyuser"
	proxyPass        = "Pr0xy>pa55??"
	apiKeyID, apiKey = "VuaCfGcBCdbkQm-e5aOx", "ui2lp2axTNmsyakw9tvNnw"
)

// credentialConfig is a configuration with every kind of basic-auth
// credential the exporter knows, and an Elasticsearch API key.
func credentialConfig() config.Config {
	cfg := config.Default()
	cfg.Output.Elasticsearch.Username = esUser
	cfg.Output.Elasticsearch.Password = secret.New(esPass)
	cfg.Output.Elasticsearch.APIKey = secret.New(base64.StdEncoding.EncodeToString([]byte(apiKeyID + ":" + apiKey)))
	cfg.Output.Kafka.SASL = kafkaconn.SASLConfig{Mechanism: kafkaconn.MechanismPlain, Username: outUser, Password: secret.New(outPass)}
	cfg.Input.Kafka.SASL = kafkaconn.SASLConfig{Mechanism: kafkaconn.MechanismSCRAMSHA512, Username: inUser, Password: secret.New(inPass)}
	cfg.DeadLetter.Kafka.SASL = kafkaconn.SASLConfig{Mechanism: kafkaconn.MechanismSCRAMSHA256, Username: dlUser, Password: secret.New(dlPass)}
	cfg.Input.EventHubs.ProxyURL = secret.New("http://" + proxyUser + ":" + url.QueryEscape(proxyPass) + "@proxy.internal:3128")
	return cfg
}

// credential is a secret and the texts it travels in.
type credential struct {
	name   string
	secret string // must never be recoverable from the output
	sent   string // what a client encodes: the secret, or user:password
}

var credentials = []credential{
	{"elasticsearch basic auth", esPass, esUser + ":" + esPass},
	{"kafka output SASL", outPass, outUser + ":" + outPass},
	{"kafka input SASL", inPass, inUser + ":" + inPass},
	{"dead-letter kafka SASL", dlPass, dlUser + ":" + dlPass},
	{"event hubs proxy basic auth", proxyPass, proxyUser + ":" + proxyPass},
	{"elasticsearch API key", apiKey, apiKeyID + ":" + apiKey},
	{"password alone", esPass, esPass},
}

// configuredLogger is the process logger as the exporter builds it.
func configuredLogger(cfg config.Config, w *bytes.Buffer) *slog.Logger {
	logger, h := logging.New(w, logging.FormatJSON, slog.LevelDebug, logging.Options{})
	h.Redactor().AddStrings(secret.In(cfg)...)
	return logger
}

// TestCredentialFormsNeverLogged logs every configured credential in
// every form it travels in (as a message, an attribute and an error,
// with no label that names it) and reads the output back.
func TestCredentialFormsNeverLogged(t *testing.T) {
	cfg := credentialConfig()
	for _, c := range credentials {
		for form, text := range secrettest.Encodings(c.sent) {
			var buf bytes.Buffer
			l := configuredLogger(cfg, &buf)
			l.Warn("client said "+text, "detail", "request "+text, "error", errors.New("upstream echoed "+text))
			if secrettest.Recoverable(buf.String(), c.secret) {
				t.Errorf("%s, %s: secret recoverable from %s", c.name, form, buf.String())
			}
		}
	}
}

// TestCredentialFormsCheckIsLive: the check above finds each form when
// nothing is redacted, so it cannot pass by looking at the wrong thing.
func TestCredentialFormsCheckIsLive(t *testing.T) {
	for _, c := range credentials {
		for form, text := range secrettest.Encodings(c.sent) {
			if !secrettest.Recoverable("client said "+text, c.secret) {
				t.Errorf("%s, %s: leak check does not see the secret in %q", c.name, form, text)
			}
		}
	}
}

// TestRedactionKeepsOrdinaryText: registering the credentials does not
// blank out text that holds none of them.
func TestRedactionKeepsOrdinaryText(t *testing.T) {
	var buf bytes.Buffer
	l := configuredLogger(credentialConfig(), &buf)
	msg := "kafka sink sspr-out wrote 50 messages to partition 3 of audit; elastic user elastic bulk ok; ZWxhc3RpYw== is elastic"
	l.Info(msg)
	if !strings.Contains(buf.String(), msg) {
		t.Errorf("ordinary text changed: %s", buf.String())
	}
}
