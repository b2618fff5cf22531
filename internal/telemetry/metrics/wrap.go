package metrics

import (
	"context"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/entra"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Reason classes of dead letters: the reason label takes only these values,
// so that a flood of distinct errors cannot create a flood of series.
const (
	ReasonInvalidJSON  = "invalid_json"  // input that is not valid JSON, or a record JSON could not decode
	ReasonNotObject    = "not_object"    // a record that is not a JSON object
	ReasonTooLarge     = "too_large"     // a value over decode.max_body_bytes
	ReasonNoTime       = "no_time"       // an SSPR record without a usable time
	ReasonNormalize    = "normalize"     // any other normalization failure
	ReasonRedrive      = "redrive"       // a dead letter that could not be re-driven
	ReasonSourceError  = "source_error"  // the source could not produce the body
	ReasonSinkRejected = "sink_rejected" // a sink refused the document
	ReasonOther        = "other"         // none of the above
	stageOther         = "other"         // a stage this package does not know
)

// ReasonClass maps a dead letter to its reason class.
func ReasonClass(r deadletter.Record) string {
	msg := r.Error
	switch {
	case r.Stage == deadletter.StageSink:
		return ReasonSinkRejected
	case strings.HasPrefix(msg, "re-drive"):
		return ReasonRedrive
	case r.Truncated || strings.Contains(msg, entra.ErrTooLarge.Error()):
		return ReasonTooLarge
	case strings.Contains(msg, entra.ErrNotObject.Error()):
		return ReasonNotObject
	case strings.Contains(msg, sspr.ErrNoTime.Error()):
		return ReasonNoTime
	case r.Stage == deadletter.StageNormalize:
		return ReasonNormalize
	case strings.HasPrefix(msg, "invalid JSON") || strings.HasPrefix(msg, "decode record:"):
		return ReasonInvalidJSON
	case r.Stage == deadletter.StageDecode && strings.HasPrefix(msg, "read input:"):
		return ReasonSourceError
	}
	return ReasonOther
}

func boundedStage(s string) string {
	switch s {
	case deadletter.StageDecode, deadletter.StageNormalize, deadletter.StageSink:
		return s
	}
	return stageOther
}

func boundedReason(s string) string {
	switch s {
	case ReasonInvalidJSON, ReasonNotObject, ReasonTooLarge, ReasonNoTime, ReasonNormalize,
		ReasonRedrive, ReasonSourceError, ReasonSinkRejected:
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

func (d *deadLetterWriter) Write(r deadletter.Record) error {
	if err := d.w.Write(r); err != nil {
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
