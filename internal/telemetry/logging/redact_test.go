package logging

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// logged runs fn against a JSON logger over a redacting handler and
// returns the output.
func logged(t *testing.T, red *secret.Redactor, fn func(l *slog.Logger)) string {
	t.Helper()
	var buf bytes.Buffer
	h := NewHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), Options{Redactor: red})
	fn(slog.New(h))
	return buf.String()
}

// handlerCases are secrets in text, one of each kind of redaction: a
// shape (secret.Redact's own tests cover every shape), a registered value,
// and a registered value's base64 form.
var handlerCases = []struct {
	name    string
	text    string
	secrets []string
}{
	{"connection string", "eventhubs: open Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWo=;EntityPath=audit: 401", []string{"Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWo"}},
	{"basic auth in URL", `elasticsearch: Post "https://elastic:ch4ng3-me!@es-1.internal:9200/_bulk": connection refused`, []string{"ch4ng3-me!"}},
	{"registered value", "kafka: SASL PLAIN sspr registered-Secret-1 failed", []string{"registered-Secret-1"}},
	{"registered value in base64", "kafka: bad auth cmVnaXN0ZXJlZC1TZWNyZXQtMQ==", []string{"cmVnaXN0ZXJlZC1TZWNyZXQtMQ"}},
}

func TestHandlerRedactsEverywhere(t *testing.T) {
	red := secret.NewRedactor("registered-Secret-1")
	for _, c := range handlerCases {
		t.Run(c.name, func(t *testing.T) {
			out := logged(t, red, func(l *slog.Logger) {
				// In the message, a string attribute, an error, a nested
				// group, a Stringer, a struct, and an attribute attached
				// with With.
				l.With("upstream", c.text).WithGroup("g").Error(c.text,
					"detail", c.text,
					"error", fmt.Errorf("write: %w", errors.New(c.text)),
					slog.Group("request", slog.String("url", c.text)),
					"stringer", stringer(c.text),
					"struct", struct{ Msg string }{c.text},
				)
			})
			for _, s := range c.secrets {
				if strings.Contains(out, s) {
					t.Errorf("secret %q in output %s", s, out)
				}
			}
		})
	}
}

type stringer string

func (s stringer) String() string { return string(s) }

func TestHandlerSecretKeys(t *testing.T) {
	out := logged(t, nil, func(l *slog.Logger) {
		l.Info("config",
			"password", "plain-value-1",
			"sasl_password", "plain-value-2",
			"SharedAccessKey", "plain-value-3",
			"connection_string", "plain-value-4",
			"Authorization", "plain-value-5",
			"api-key", "plain-value-6",
			"accountKey", "plain-value-7",
			"sas", "plain-value-8",
			slog.Group("es", slog.String("token", "plain-value-9")),
			"secret_value", secret.New("plain-value-10"),
			"empty_password", "",
			"sasl_mechanism", "SCRAM-SHA-512",
			"authority_host", "https://login.microsoftonline.com/",
			"keyboard", "visible-1",
			"signal", "visible-2",
			"component", "sink.kafka",
		)
	})
	for i := 1; i <= 10; i++ {
		if strings.Contains(out, fmt.Sprintf("plain-value-%d\"", i)) {
			t.Errorf("plain-value-%d in %s", i, out)
		}
	}
	for _, k := range []string{`"empty_password":""`, `"sasl_mechanism":"SCRAM-SHA-512"`, `"authority_host":"https://login.microsoftonline.com/"`, `"keyboard":"visible-1"`, `"signal":"visible-2"`, `"component":"sink.kafka"`, `"password":"[redacted]"`} {
		if !strings.Contains(out, k) {
			t.Errorf("%s missing from %s", k, out)
		}
	}
}

func TestNewPicksFormat(t *testing.T) {
	var buf bytes.Buffer
	l, h := New(&buf, FormatAuto, slog.LevelInfo, Options{})
	l.Info("hello", "password", "x1234")
	if !strings.HasPrefix(buf.String(), "{") || strings.Contains(buf.String(), "x1234") {
		t.Fatalf("auto format on a buffer: %s", buf.String())
	}
	if h.Redactor() == nil {
		t.Fatal("no redactor")
	}
	buf.Reset()
	l, _ = New(&buf, FormatText, slog.LevelInfo, Options{})
	l.Debug("hidden")
	l.Info("hello")
	if !strings.Contains(buf.String(), "msg=hello") || strings.Contains(buf.String(), "hidden") {
		t.Fatalf("text format: %s", buf.String())
	}
}
