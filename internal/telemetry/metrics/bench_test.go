package metrics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/streamtest"
)

// BenchmarkSinkDecorator is the cost the decorator adds to one Write.
func BenchmarkSinkDecorator(b *testing.B) {
	m := New(withoutRuntimeCollectors())
	s := Sink("elasticsearch", &streamtest.Sink{Discard: true}, m)
	docs := make([]ecs.Event, 100)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Write(ctx, docs)
	}
}

// BenchmarkDeadLetterCount classifies and counts one dead letter.
func BenchmarkDeadLetterCount(b *testing.B) {
	m := New(withoutRuntimeCollectors())
	w := DeadLetters(&discardWriter{}, m)
	r := deadletter.New(time.Now(), deadletter.StageNormalize, deadletter.ReasonNoTime, stream.Position{Kind: "eventhubs"}, errors.New(`normalize "Reset password (self-service)": no parseable activityDateTime or time`), nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = w.Write(ctx, r)
	}
}

// BenchmarkBatchDone adds one batch's counts.
func BenchmarkBatchDone(b *testing.B) {
	m := New(withoutRuntimeCollectors())
	c := stream.Counts{Records: 50, SSPR: 3, Dropped: 47, ByAction: map[string]int64{"password-reset": 2, "password-reset-progress": 1}, ByOutcome: map[string]int64{"success": 3}}
	b.ReportAllocs()
	for b.Loop() {
		m.BatchDone(c, time.Millisecond, nil)
	}
}

type discardWriter struct{}

func (discardWriter) Write(context.Context, deadletter.Record) error { return nil }
