package logging

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

func benchLogger(interval time.Duration) *slog.Logger {
	red := secret.NewRedactor("es-password-123", "another-secret-value")
	h := NewHandler(slog.NewJSONHandler(io.Discard, nil), Options{Redactor: red, RepeatInterval: interval})
	return slog.New(h).With("component", "pipeline")
}

// BenchmarkHandlerPlain is the common case: a record with no secret in it.
func BenchmarkHandlerPlain(b *testing.B) {
	l := benchLogger(0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.Warn("dead letter", "stage", "decode", "source", "eventhubs audit partition 3 offset 4711", "error", errors.New("invalid JSON at line 1 (byte 17): unexpected end"), "n", i)
	}
}

// BenchmarkHandlerSecret logs a connection string in an error.
func BenchmarkHandlerSecret(b *testing.B) {
	l := benchLogger(0)
	err := errors.New("eventhubs: open Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWo=;EntityPath=audit: 401")
	b.ReportAllocs()
	for b.Loop() {
		l.Error("source failed", "error", err)
	}
}

// BenchmarkHandlerRateLimited logs the same record over and over: all but
// the first are held back.
func BenchmarkHandlerRateLimited(b *testing.B) {
	l := benchLogger(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		l.Warn("write failed, retrying", "sink", "kafka", "error", "connection refused")
	}
}

// configuredLogger holds the secrets of a configuration with every
// output enabled: basic auth, three SASL users, an API key, two
// connection strings.
func configuredLogger() *slog.Logger {
	type basic struct {
		Username string
		Password secret.String
	}
	red := secret.NewRedactor()
	red.AddStrings(secret.In(struct {
		ES, KafkaOut, KafkaIn, DeadLetter basic
		APIKey, EventHubs, Storage        secret.String
	}{
		ES:         basic{"elastic", secret.New("es-password-123")},
		KafkaOut:   basic{"sspr-out", secret.New("kafka-out-password")},
		KafkaIn:    basic{"sspr-in", secret.New("kafka-in-password")},
		DeadLetter: basic{"sspr-dl", secret.New("dead-letter-password")},
		APIKey:     secret.New("VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="),
		EventHubs:  secret.New("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWo=;EntityPath=audit"),
		Storage:    secret.New("DefaultEndpointsProtocol=https;AccountName=ssprckpt;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net"),
	})...)
	h := NewHandler(slog.NewJSONHandler(io.Discard, nil), Options{Redactor: red})
	return slog.New(h).With("component", "pipeline")
}

// BenchmarkHandlerPlainConfigured is BenchmarkHandlerPlain with the
// secrets of a full configuration registered.
func BenchmarkHandlerPlainConfigured(b *testing.B) {
	l := configuredLogger()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.Warn("dead letter", "stage", "decode", "source", "eventhubs audit partition 3 offset 4711", "error", errors.New("invalid JSON at line 1 (byte 17): unexpected end"), "n", i)
	}
}
