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

// Realistic leak shapes. Each secret fragment must vanish; each keep
// fragment must survive, so that a redacted line still says what failed.
var leakCases = []struct {
	name    string
	text    string
	secrets []string
	keep    []string
}{
	{
		name:    "event hubs connection string",
		text:    "eventhubs: open Endpoint=sb://contoso-audit.servicebus.windows.net/;SharedAccessKeyName=sspr-listen;SharedAccessKey=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWo=;EntityPath=entra-audit: 401 Unauthorized",
		secrets: []string{"Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWo"},
		keep:    []string{"SharedAccessKeyName=sspr-listen", "SharedAccessKey=[redacted]", "EntityPath=entra-audit", "401 Unauthorized"},
	},
	{
		name:    "event hubs connection string with SAS",
		text:    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessSignature=SharedAccessSignature sr=sb%3a%2f%2fns.servicebus.windows.net%2faudit&sig=Q1w2E3r4T5y6U7i8O9p0%2bASDFghjkl%3d&se=1798761600&skn=listen;EntityPath=audit",
		secrets: []string{"Q1w2E3r4T5y6U7i8O9p0"},
		keep:    []string{"skn=listen", "se=1798761600", "EntityPath=audit"},
	},
	{
		name:    "storage connection string",
		text:    `checkpoint store: DefaultEndpointsProtocol=https;AccountName=ssprckpt;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net`,
		secrets: []string{"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50u", "KBHBeksoGMGw"},
		keep:    []string{"AccountName=ssprckpt", "AccountKey=[redacted]", "EndpointSuffix=core.windows.net"},
	},
	{
		name:    "blob SAS URL",
		text:    `PUT https://ssprckpt.blob.core.windows.net/checkpoints/ns/hub/$default/checkpoint/0?sv=2022-11-02&ss=b&srt=co&sp=rwdlac&se=2026-12-31T00:00:00Z&spr=https&sig=AbCdEf%2BGhIjKlMnOpQrStUvWxYz0123456789%3D&comp=metadata: 403`,
		secrets: []string{"AbCdEf%2BGhIjKlMnOpQrStUvWxYz0123456789"},
		keep:    []string{"sig=[redacted]&comp=metadata", "sp=rwdlac", "ssprckpt.blob.core.windows.net/checkpoints"},
	},
	{
		name:    "kafka SASL password in an error",
		text:    `kafka sink: dial broker-1:9093: sasl: SCRAM-SHA-512 mechanism{Username:sspr-exporter Password:Kf!9x-Pq2_zz} handshake: EOF`,
		secrets: []string{"Kf!9x-Pq2_zz"},
		keep:    []string{"Username:sspr-exporter", "Password:[redacted]", "handshake: EOF"},
	},
	{
		name:    "kafka password in key=value form",
		text:    `kafka: sasl plain username=sspr password="p@ss word 42" rejected by broker`,
		secrets: []string{"p@ss word 42", "word 42"},
		keep:    []string{`password="[redacted]"`, "rejected by broker"},
	},
	{
		name:    "elasticsearch API key header",
		text:    `elasticsearch: POST /_bulk headers map[Authorization:[ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==] Content-Type:[application/x-ndjson]]: 401`,
		secrets: []string{"VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw"},
		keep:    []string{"ApiKey [redacted]", "Content-Type:[application/x-ndjson]"},
	},
	{
		name:    "API key outside a header",
		text:    `retrying with ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWky after Basic authentication failed`,
		secrets: []string{"VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWky"},
		keep:    []string{"ApiKey [redacted]", "Basic authentication failed"},
	},
	{
		name:    "bearer token",
		text:    "GET /subscriptions Authorization: Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2V2ZW50aHVicy5henVyZS5uZXQifQ.c2lnbmF0dXJlLXBhcnQ",
		secrets: []string{"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9", "c2lnbmF0dXJlLXBhcnQ"},
		keep:    []string{"Authorization: Bearer [redacted]"},
	},
	{
		name:    "bare JWT",
		text:    "token cache holds eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2V2ZW50aHVicy5henVyZS5uZXQifQ.c2lnbmF0dXJlLXBhcnQ for tenant",
		secrets: []string{"eyJhdWQiOiJodHRwczovL2V2ZW50aHVicy5henVyZS5uZXQifQ"},
		keep:    []string{"for tenant"},
	},
	{
		name:    "basic auth in URL",
		text:    `elasticsearch: Post "https://elastic:ch4ng3-me!@es-1.internal:9200/_bulk": dial tcp 10.0.0.5:9200: connect: connection refused`,
		secrets: []string{"ch4ng3-me!"},
		keep:    []string{"https://elastic:[redacted]@es-1.internal:9200/_bulk", "connection refused"},
	},
	{
		name:    "basic auth header",
		text:    `request headers: Authorization: Basic c3NwcjpodW50ZXIy`,
		secrets: []string{"c3NwcjpodW50ZXIy"},
		keep:    []string{"Basic [redacted]"},
	},
	{
		name:    "client secret in a token request body",
		text:    `azidentity: POST https://login.microsoftonline.com/x/oauth2/v2.0/token body {"client_id":"00000000-0000-0000-0000-000000000001","client_secret":"Abc8Q~d3f.Ghi_jkl-Mno","grant_type":"client_credentials"}`,
		secrets: []string{"Abc8Q~d3f.Ghi_jkl-Mno"},
		keep:    []string{`"client_secret":"[redacted]"`, `"grant_type":"client_credentials"`, "oauth2/v2.0/token"},
	},
	{
		name: "nothing secret",
		text: "event hubs partition 3 offset 4711 sequence 12: batch of 50 acknowledged; SharedAccessKeyName=listen",
		keep: []string{"event hubs partition 3 offset 4711 sequence 12: batch of 50 acknowledged; SharedAccessKeyName=listen"},
	},
}

func TestRedactLeakShapes(t *testing.T) {
	for _, c := range leakCases {
		t.Run(c.name, func(t *testing.T) {
			got := Redact(c.text)
			for _, s := range c.secrets {
				if strings.Contains(got, s) {
					t.Errorf("secret %q left in %q", s, got)
				}
			}
			for _, k := range c.keep {
				if !strings.Contains(got, k) {
					t.Errorf("%q lost from %q", k, got)
				}
			}
			if len(c.secrets) == 0 && got != c.text {
				t.Errorf("changed text without secrets: %q", got)
			}
		})
	}
}

// logged runs fn against a JSON logger over a redacting handler and
// returns the output.
func logged(t *testing.T, red *Redactor, fn func(l *slog.Logger)) string {
	t.Helper()
	var buf bytes.Buffer
	h := NewHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), Options{Redactor: red})
	fn(slog.New(h))
	return buf.String()
}

func TestHandlerRedactsEverywhere(t *testing.T) {
	for _, c := range leakCases {
		if len(c.secrets) == 0 {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			out := logged(t, nil, func(l *slog.Logger) {
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

func TestRegisteredSecrets(t *testing.T) {
	red := NewRedactor("ab", "S3cr3t P@ss/word")
	red.AddSecretStrings(secret.New("another-Registered-1"), secret.String{})
	cases := []string{
		"auth failed for user sspr with S3cr3t P@ss/word",
		"dial amqps://x/?p=S3cr3t+P%40ss%2Fword",             // query-escaped
		"dial amqps://x/S3cr3t%20P@ss%2Fword",                // path-escaped
		`{"detail":"another-Registered-1 rejected"}`,         // inside JSON text
		"kafka: SASL PLAIN sspr another-Registered-1 failed", // no label at all
	}
	for _, c := range cases {
		got := red.Redact(c)
		if strings.Contains(got, "S3cr3t") || strings.Contains(got, "another-Registered-1") || !strings.Contains(got, Mask) {
			t.Errorf("Redact(%q) = %q", c, got)
		}
	}
	// Too short to register: ordinary words survive.
	if got := red.Redact("tab label"); got != "tab label" {
		t.Errorf("short secret replaced: %q", got)
	}
	out := logged(t, red, func(l *slog.Logger) {
		l.Warn("sink error S3cr3t P@ss/word", "error", errors.New("x another-Registered-1 y"))
	})
	if strings.Contains(out, "S3cr3t") || strings.Contains(out, "another-Registered-1") {
		t.Errorf("registered secret logged: %s", out)
	}
}

func TestIsSecretKey(t *testing.T) {
	secretKeys := []string{"password", "Password", "sasl.password", "SharedAccessKey", "shared_access_key", "AccountKey", "connection_string", "connectionString", "token", "access_token", "client_secret", "api_key", "apiKey", "Authorization", "sig", "sas_token", "key", "pseudonymize.key", "credentials", "private_key", "pwd"}
	plainKeys := []string{"partition", "component", "error", "url", "keyboard", "signal", "sasl_mechanism", "username", "offset", "monkey", "passage", "authority_host", "key_id", "SharedAccessKeyName", "token_url", "secret_file"}
	for _, k := range secretKeys {
		if !IsSecretKey(k) {
			t.Errorf("IsSecretKey(%q) = false", k)
		}
	}
	for _, k := range plainKeys {
		if IsSecretKey(k) {
			t.Errorf("IsSecretKey(%q) = true", k)
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

func TestConnectionStringPartsRegistered(t *testing.T) {
	red := NewRedactor()
	red.AddSecretStrings(SecretsIn(struct {
		Input struct {
			ConnectionString secret.String
			Checkpoint       *struct{ SAS secret.String }
		}
		Sinks []struct{ Password secret.String }
		Empty secret.String
		plain secret.String
	}{
		Input: struct {
			ConnectionString secret.String
			Checkpoint       *struct{ SAS secret.String }
		}{
			ConnectionString: secret.New("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=K3yOnlyPart0123456789abcdefXYZ=;EntityPath=audit"),
			Checkpoint:       &struct{ SAS secret.String }{secret.New("sv=2022-11-02&sp=rwl&sig=SigOnlyPart%2B0123456789")},
		},
		Sinks: []struct{ Password secret.String }{{secret.New("kafka-pass-value")}},
		plain: secret.New("unexported-not-walked"),
	})...)
	cases := map[string]string{
		"amqp: link detached: key K3yOnlyPart0123456789abcdefXYZ= rejected": "K3yOnlyPart0123456789abcdefXYZ",
		"blob: signature SigOnlyPart%2B0123456789 does not match":           "SigOnlyPart",
		"kafka: sasl: kafka-pass-value":                                     "kafka-pass-value",
	}
	for in, secretPart := range cases {
		if got := red.Redact(in); strings.Contains(got, secretPart) {
			t.Errorf("Redact(%q) = %q", in, got)
		}
	}
	// Non-secret parts stay readable.
	if got := red.Redact("hub audit, key name listen"); got != "hub audit, key name listen" {
		t.Errorf("non-secret part replaced: %q", got)
	}
}

func TestAddSecretsWhileLogging(t *testing.T) {
	red := NewRedactor("first-secret-1")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			red.AddSecrets(fmt.Sprintf("later-secret-%03d", i))
		}
	}()
	for range 200 {
		if got := red.Redact("x first-secret-1 y"); strings.Contains(got, "first-secret-1") {
			t.Fatalf("leak: %q", got)
		}
	}
	<-done
	if got := red.Redact("later-secret-049"); got != Mask {
		t.Fatalf("last secret not registered: %q", got)
	}
}
