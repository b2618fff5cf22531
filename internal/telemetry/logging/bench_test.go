package logging

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

func benchLogger(interval time.Duration) *slog.Logger {
	red := NewRedactor("es-password-123", "another-secret-value")
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

func BenchmarkRedactNoTrigger(b *testing.B) {
	s := "event hubs partition 3 offset 4711 sequence 12: batch of 50 acknowledged"
	b.ReportAllocs()
	for b.Loop() {
		_ = Redact(s)
	}
}
