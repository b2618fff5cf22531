package metrics

import (
	"context"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// ReasonOther is the reason label of a dead letter whose reason is empty
// (written before dead letters carried one) or unknown: the label takes
// only the values of deadletter.Reason, so that a flood of distinct errors
// cannot create a flood of series.
const ReasonOther = "other"

// stageOther is the stage label of a stage this package does not know.
const stageOther = "other"

// ReasonClass returns the reason label of a dead letter: its reason code.
func ReasonClass(r deadletter.Record) string { return boundedReason(string(r.Reason)) }

func boundedStage(s string) string {
	switch s {
	case deadletter.StageDecode, deadletter.StageNormalize, deadletter.StageSink:
		return s
	}
	return stageOther
}

func boundedReason(s string) string {
	if deadletter.Reason(s).Known() {
		return s
	}
	return ReasonOther
}

// DeadLetters wraps a dead-letter writer so that every record written is
// counted by stage and reason class. Records that fail to be written are
// not counted: the pipeline then fails the batch and it is read again.
func DeadLetters(w deadletter.Writer, rec Recorder) deadletter.Writer {
	return &deadLetterWriter{w: w, rec: rec}
}

type deadLetterWriter struct {
	w   deadletter.Writer
	rec Recorder
}

func (d *deadLetterWriter) Write(ctx context.Context, r deadletter.Record) error {
	if err := d.w.Write(ctx, r); err != nil {
		return err
	}
	d.rec.DeadLetter(r.Stage, ReasonClass(r))
	return nil
}

// Sink wraps a sink so that every Write is timed and counted under name.
// The result keeps the sink's Ready method when it has one.
func Sink(name string, s stream.Sink, rec Recorder) stream.Sink {
	ws := &sink{name: name, Sink: s, rec: rec}
	if r, ok := s.(stream.Readiness); ok {
		return &readySink{sink: ws, r: r}
	}
	return ws
}

type sink struct {
	name string
	stream.Sink
	rec Recorder
}

func (s *sink) Write(ctx context.Context, docs []ecs.Event) error {
	start := time.Now()
	err := s.Sink.Write(ctx, docs)
	// The error is handed back unchanged: the pipeline looks for
	// *stream.Rejected in it.
	s.rec.SinkWrite(s.name, len(docs), time.Since(start), err)
	return err
}

type readySink struct {
	*sink
	r stream.Readiness
}

func (s *readySink) Ready() error { return s.r.Ready() }

// Source wraps a source so that batch sizes, batches in flight, the time
// from read to ack and the ack results are recorded; m's LastProgress then
// follows successful acks. The result keeps the source's Ready method when
// it has one.
func (m *Metrics) Source(src stream.Source) stream.Source {
	m.sourceWrapped.Store(true)
	ws := &source{Source: src, m: m}
	if r, ok := src.(stream.Readiness); ok {
		return &readySource{source: ws, r: r}
	}
	return ws
}

type source struct {
	stream.Source
	m *Metrics
}

func (s *source) Read(ctx context.Context) (stream.Batch, error) {
	b, err := s.Source.Read(ctx)
	if err != nil {
		return b, err
	}
	s.m.BatchRead(len(b.Bodies))
	start := time.Now()
	ack := b.Ack
	b.Ack = func(ctx context.Context, err error) error {
		var aerr error
		if ack != nil {
			aerr = ack(ctx, err)
		}
		// Progress means checkpointable: a failed ack is no progress.
		result := err
		if result == nil {
			result = aerr
		}
		s.m.BatchAcked(time.Since(start), result)
		return aerr
	}
	return b, nil
}

type readySource struct {
	*source
	r stream.Readiness
}

func (s *readySource) Ready() error { return s.r.Ready() }
