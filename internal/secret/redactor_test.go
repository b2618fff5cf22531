package secret

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/secret/secrettest"
)

func TestRegisteredSecrets(t *testing.T) {
	red := NewRedactor("ab", "S3cr3t P@ss/word")
	red.AddStrings(New("another-Registered-1"), String{})
	cases := []string{
		"auth failed for user sspr with S3cr3t P@ss/word",
		"dial amqps://x/?p=S3cr3t+P%40ss%2Fword",             // query-escaped
		"dial amqps://x/S3cr3t%20P@ss%2Fword",                // path-escaped
		"dial amqps://x/?p=S3cr3t+P%40ss%2fword",             // lower-case escapes
		`{"detail":"another-Registered-1 rejected"}`,         // inside JSON text
		"kafka: SASL PLAIN sspr another-Registered-1 failed", // no label at all
	}
	for _, c := range cases {
		got := red.Redact(c)
		if strings.Contains(got, "S3cr3t") || strings.Contains(got, "another-Registered-1") || !strings.Contains(got, Redacted) {
			t.Errorf("Redact(%q) = %q", c, got)
		}
	}
	// Too short to register: ordinary words survive.
	if got := red.Redact("tab label"); got != "tab label" {
		t.Errorf("short secret replaced: %q", got)
	}
}

// TestEveryForm registers a secret and a basic-auth pair and checks every
// form secrettest knows, in the middle of a line, at its start and at its
// end.
func TestEveryForm(t *testing.T) {
	const user, pass = "sspr", "p>ss?w0rd~~"
	red := &Redactor{}
	red.AddBasic(user, pass)
	for _, sent := range []string{pass, user + ":" + pass} {
		for form, text := range secrettest.Encodings(sent) {
			for _, line := range []string{"got " + text + " back", text, "got " + text, text + " back"} {
				if got := red.Redact(line); secrettest.Recoverable(got, pass) {
					t.Errorf("%q, %s: %q redacted to %q", sent, form, line, got)
				}
			}
		}
	}
}

// TestEncodedAtAnyOffset puts the secret at every offset of random data
// and checks that its base64 reveals nothing of it once redacted: the
// three precomputed alignments cover every offset.
func TestEncodedAtAnyOffset(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range []string{"abcd", "hunter2", "kafka-out-password", "Zm9vYmFy+/=="} {
		red := NewRedactor(s)
		for off := range 9 {
			data := make([]byte, off+len(s)+7)
			for i := range data {
				data[i] = byte(rng.UintN(256))
			}
			copy(data[off:], s)
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
				text := "body " + enc.EncodeToString(data) + " end"
				if !secrettest.Recoverable(text, s) {
					t.Fatalf("check is blind to %q at %d in %q", s, off, text)
				}
				if got := red.Redact(text); secrettest.Recoverable(got, s) || !strings.HasPrefix(got, "body ") || !strings.HasSuffix(got, " end") {
					t.Errorf("%q at offset %d: %q redacted to %q", s, off, text, got)
				}
			}
		}
	}
}

// TestAPIKeyParts: an API key configured as base64 "id:key" is also found
// decoded, as the key alone, and as the key's own base64.
func TestAPIKeyParts(t *testing.T) {
	const id, key = "VuaCfGcBCdbkQm-e5aOx", "ui2lp2axTNmsyakw9tvNnw"
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		red := NewRedactor(enc.EncodeToString([]byte(id + ":" + key)))
		for _, text := range []string{id + ":" + key, "key " + key, base64.StdEncoding.EncodeToString([]byte(key))} {
			if got := red.Redact(text); secrettest.Recoverable(got, key) {
				t.Errorf("%q redacted to %q", text, got)
			}
		}
		// The id names the key; it is not secret on its own.
		if got := red.Redact("api key id " + id); got != "api key id "+id {
			t.Errorf("id alone replaced: %q", got)
		}
	}
}

// TestURLUserInfo: the password of a configured URL is searched for on
// its own and with its user, as Proxy-Authorization sends it.
func TestURLUserInfo(t *testing.T) {
	red := NewRedactor("http://proxyuser:Pr0xy%3Ep%40ss@proxy.internal:3128")
	pair := base64.StdEncoding.EncodeToString([]byte("proxyuser:Pr0xy>p@ss"))
	for _, text := range []string{"Pr0xy>p@ss", "Proxy-Authorization: " + pair, "proxy said " + pair} {
		if got := red.Redact(text); secrettest.Recoverable(got, "Pr0xy>p@ss") {
			t.Errorf("%q redacted to %q", text, got)
		}
	}
}

func TestOverlappingSecretsMerge(t *testing.T) {
	red := NewRedactor("abcdef-secret", "secret-ghijkl", "zzzz")
	cases := map[string]string{
		"x abcdef-secret-ghijkl y": "x " + Redacted + " y",
		"abcdef-secretzzzz":        Redacted,
		"zzzz zzzz":                Redacted + " " + Redacted,
		"no match here":            "no match here",
		"abc":                      "abc",
		"":                         "",
	}
	for in, want := range cases {
		if got := red.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactError(t *testing.T) {
	red := NewRedactor("hunter2-pw")
	err := fmt.Errorf("open checkpoint with hunter2-pw: %w", fs.ErrPermission)
	got := red.RedactError(err)
	if strings.Contains(got.Error(), "hunter2-pw") || !errors.Is(got, fs.ErrPermission) {
		t.Errorf("RedactError = %q (is ErrPermission: %v)", got, errors.Is(got, fs.ErrPermission))
	}
	clean := errors.New("no secret")
	if red.RedactError(clean) != clean || red.RedactError(nil) != nil {
		t.Error("a clean error is not returned as it is")
	}
	// A nil Redactor still removes the shapes.
	var none *Redactor
	if got := none.RedactError(errors.New("dial Password=abc123;x")); got.Error() != "dial Password="+Redacted+";x" {
		t.Errorf("nil redactor: %q", got)
	}
}

func TestConnectionStringPartsRegistered(t *testing.T) {
	red := NewRedactor()
	red.AddStrings(In(struct {
		Input struct {
			ConnectionString String
			Checkpoint       *struct{ SAS String }
		}
		Sinks []struct{ Password String }
		Empty String
		plain String
	}{
		Input: struct {
			ConnectionString String
			Checkpoint       *struct{ SAS String }
		}{
			ConnectionString: New("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=K3yOnlyPart0123456789abcdefXYZ=;EntityPath=audit"),
			Checkpoint:       &struct{ SAS String }{New("sv=2022-11-02&sp=rwl&sig=SigOnlyPart%2B0123456789")},
		},
		Sinks: []struct{ Password String }{{New("kafka-pass-value")}},
		plain: New("unexported-not-walked"),
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

func TestInFindsBasicPairs(t *testing.T) {
	type sasl struct {
		Mechanism string
		Username  string
		Password  String
	}
	got := In(struct {
		ES struct {
			User     string
			Password String
		}
		Kafka   []sasl
		NoUser  sasl
		NoPass  sasl
		private sasl
	}{
		ES: struct {
			User     string
			Password String
		}{"elastic", New("es-pw")},
		Kafka:   []sasl{{"plain", "sspr", New("k-pw")}},
		NoUser:  sasl{Password: New("lonely-pw")},
		NoPass:  sasl{Username: "nobody"},
		private: sasl{"plain", "hidden", New("hidden-pw")},
	})
	var vals []string
	for _, s := range got {
		vals = append(vals, s.Reveal())
	}
	want := "elastic:es-pw es-pw sspr:k-pw k-pw lonely-pw"
	if strings.Join(vals, " ") != want {
		t.Errorf("In = %q, want %q", strings.Join(vals, " "), want)
	}
}

func TestAddWhileRedacting(t *testing.T) {
	red := NewRedactor("first-secret-1")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			red.Add(fmt.Sprintf("later-secret-%03d", i))
		}
	}()
	for range 200 {
		if got := red.Redact("x first-secret-1 y"); strings.Contains(got, "first-secret-1") {
			t.Fatalf("leak: %q", got)
		}
	}
	<-done
	if got := red.Redact("later-secret-049"); got != Redacted {
		t.Fatalf("last secret not registered: %q", got)
	}
}

func BenchmarkRedactNoTrigger(b *testing.B) {
	s := "event hubs partition 3 offset 4711 sequence 12: batch of 50 acknowledged"
	b.ReportAllocs()
	for b.Loop() {
		_ = Redact(s)
	}
}

// BenchmarkRedactorPlain is a log line without secrets through a
// redactor that knows the secrets of a full configuration.
func BenchmarkRedactorPlain(b *testing.B) {
	red := NewRedactor("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWo=;EntityPath=audit",
		"VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==")
	for _, u := range []string{"elastic", "sspr-out", "sspr-in", "sspr-dl"} {
		red.AddBasic(u, u+"-password-123")
	}
	s := "event hubs partition 3 offset 4711 sequence 12: batch of 50 acknowledged"
	b.ReportAllocs()
	for b.Loop() {
		_ = red.Redact(s)
	}
}

// Storage and Event Hubs errors quote SAS signatures and keys in URLs and
// connection strings: without any configured value, the shapes remove them.
func TestRedactErrorShapes(t *testing.T) {
	err := RedactError(errors.New(`Get "https://a.blob.core.windows.net/c?restype=container&sig=abc%2Bdef&se=2026": dial tcp: refused; Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=s3cr3t`))
	if strings.Contains(err.Error(), "abc%2Bdef") || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("not redacted: %v", err)
	}
	if !strings.Contains(err.Error(), "restype=container") || !strings.Contains(err.Error(), "sig="+Redacted) {
		t.Fatalf("redacted too much: %v", err)
	}
	plain := errors.New("plain")
	if RedactError(plain) != plain {
		t.Fatal("an error without secrets was rewrapped")
	}
}
