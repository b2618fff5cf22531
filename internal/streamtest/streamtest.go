// Package streamtest holds the fakes of stream.Source and stream.Sink that
// tests share: a source that hands out prepared batches and records how
// each was acknowledged, and a sink that keeps, refuses or fails documents
// as told. Only tests import it.
package streamtest

import (
	"context"
	"io"
	"maps"
	"sync"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Bodies returns the bodies of one batch: each of data, read at pos.
func Bodies(pos stream.Position, data ...string) []stream.Body {
	out := make([]stream.Body, len(data))
	for i, d := range data {
		out[i] = stream.Body{Data: []byte(d), Pos: pos}
	}
	return out
}

// readiness is what Ready returns, as set by SetReady.
type readiness struct {
	mu  sync.Mutex
	err error
}

// Ready returns what SetReady set.
func (r *readiness) Ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// SetReady sets what Ready returns.
func (r *readiness) SetReady(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

// Source hands out its batches in order, then io.EOF. It never blocks and
// does not look at the context of Read. A batch acknowledged twice panics:
// the pipeline must acknowledge each exactly once.
type Source struct {
	readiness

	mu      sync.Mutex
	batches [][]stream.Body
	next    int
	acks    map[int]error
	ackErr  error
}

var (
	_ stream.Source    = (*Source)(nil)
	_ stream.Readiness = (*Source)(nil)
)

// NewSource returns a source of the given batches.
func NewSource(batches ...[]stream.Body) *Source {
	return &Source{batches: batches, acks: map[int]error{}}
}

// Read returns the next batch, or io.EOF after the last.
func (s *Source) Read(context.Context) (stream.Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == len(s.batches) {
		return stream.Batch{}, io.EOF
	}
	i := s.next
	s.next++
	return stream.Batch{Bodies: s.batches[i], Ack: func(_ context.Context, err error) error { return s.ack(i, err) }}, nil
}

func (s *Source) ack(i int, err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.acks[i]; dup {
		panic("streamtest: batch acknowledged twice")
	}
	s.acks[i] = err
	return s.ackErr
}

// Close does nothing.
func (s *Source) Close(context.Context) error { return nil }

// SetAckError sets what the acks of batches return from now on, as a
// source that cannot checkpoint would.
func (s *Source) SetAckError(err error) {
	s.mu.Lock()
	s.ackErr = err
	s.mu.Unlock()
}

// Acks returns the error each acknowledged batch was acknowledged with, by
// the batch's index.
func (s *Source) Acks() map[int]error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.acks)
}

// Unread returns how many batches Read has not handed out yet.
func (s *Source) Unread() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.batches) - s.next
}

// Sink keeps the documents written to it. Its exported fields say how it
// answers; set them before the first Write.
type Sink struct {
	// Name is the sink's name in the *stream.Rejected it returns.
	Name string
	// Reject, when set, says why a document can never be stored (nil: it
	// can): the refused documents are returned in a *stream.Rejected and
	// the others kept.
	Reject func(ecs.Event) error
	// Fail, when set, is the error of every Write; nothing is kept.
	Fail error
	// Answers are returned by the next Writes in turn, before Fail and
	// Reject apply; a nil answer keeps the documents.
	Answers []error
	// Block, when set, holds every Write until it is closed or the
	// Write's context ends.
	Block chan struct{}
	// Discard drops the documents instead of keeping them (benchmarks).
	Discard bool

	readiness

	mu   sync.Mutex
	docs []ecs.Event
}

var (
	_ stream.Sink      = (*Sink)(nil)
	_ stream.Readiness = (*Sink)(nil)
)

// Write keeps docs, or answers as the fields say.
func (s *Sink) Write(ctx context.Context, docs []ecs.Event) error {
	if s.Block != nil {
		select {
		case <-s.Block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.Answers) > 0 {
		err := s.Answers[0]
		s.Answers = s.Answers[1:]
		if err != nil {
			return err
		}
	}
	if s.Fail != nil {
		return s.Fail
	}
	if s.Discard && s.Reject == nil {
		return nil
	}
	var rej []stream.Rejection
	for i := range docs {
		if s.Reject != nil {
			if err := s.Reject(docs[i]); err != nil {
				rej = append(rej, stream.Rejection{Index: i, Err: err})
				continue
			}
		}
		if !s.Discard {
			s.docs = append(s.docs, docs[i])
		}
	}
	if len(rej) > 0 {
		return &stream.Rejected{Sink: s.Name, Docs: rej}
	}
	return nil
}

// Close does nothing.
func (s *Sink) Close(context.Context) error { return nil }

// Docs returns the documents kept, in the order written.
func (s *Sink) Docs() []ecs.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ecs.Event(nil), s.docs...)
}

// IDs returns the event.id of every document kept, in the order written.
func (s *Sink) IDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.docs))
	for _, d := range s.docs {
		out = append(out, d.Event.ID)
	}
	return out
}
