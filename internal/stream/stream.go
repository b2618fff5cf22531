// Package stream holds the types every source, sink and the pipeline share:
// bodies with their input position, acknowledged batches, and the Source and
// Sink interfaces.
package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
)

// Position says where a body came from: a file and line, or an Event Hubs or
// Kafka partition with its offset and sequence number. It travels with the
// body to the dead letters.
type Position struct {
	Kind      string `json:"kind"`                // file, stdin, eventhubs, kafka
	File      string `json:"file,omitempty"`      // file sources
	Line      int64  `json:"line,omitempty"`      // 1-based line where the value began
	Topic     string `json:"topic,omitempty"`     // event hub or Kafka topic
	Partition string `json:"partition,omitempty"` // partition id
	Offset    string `json:"offset,omitempty"`    // Event Hubs offsets are strings; Kafka's are printed as such
	Sequence  *int64 `json:"sequence_number,omitempty"`
}

// String renders the position for logs and error messages.
func (p Position) String() string {
	var b strings.Builder
	b.WriteString(p.Kind)
	if p.File != "" {
		b.WriteString(" " + p.File)
	}
	if p.Line > 0 {
		b.WriteString(":" + strconv.FormatInt(p.Line, 10))
	}
	if p.Topic != "" {
		b.WriteString(" " + p.Topic)
	}
	if p.Partition != "" {
		b.WriteString(" partition " + p.Partition)
	}
	if p.Offset != "" {
		b.WriteString(" offset " + p.Offset)
	}
	if p.Sequence != nil {
		b.WriteString(" sequence " + strconv.FormatInt(*p.Sequence, 10))
	}
	return b.String()
}

// AtLine returns a copy of p for a value that began n-1 lines after p.
func (p Position) AtLine(n int64) Position {
	if p.Line > 0 {
		p.Line += n - 1
	} else if p.Kind == "file" || p.Kind == "stdin" {
		p.Line = n
	}
	return p
}

// Body is one unit of input: one Event Hubs event or Kafka message, or one
// record of a file. Data may hold several records.
type Body struct {
	Data []byte
	Pos  Position
	// Err, when set, means the source could not produce a valid body here
	// (for example a value that failed to parse); Data holds what was read of
	// it and the pipeline dead-letters it at the decode stage.
	Err error
	// Form says what Data holds.
	Form Form
}

// Form is the kind of data a body holds.
type Form uint8

// Forms.
const (
	// FormInput is one message of Entra input in any shape the decoder
	// reads (an Event Hubs body, lines of records, a Graph page...): an
	// Event Hubs event or a Kafka message, as the sources hand them out.
	// It is decoded as a whole: a message that holds no records, or the
	// part of it from a value that fails to parse to its end, is one dead
	// letter. (Files are split into values by their source, which resumes
	// after a bad value at the next line.)
	FormInput Form = iota
	// FormRecord is exactly one record (or one element that should have
	// been a record, with Err set), already split out by the source.
	FormRecord
)

// Batch is what a source hands out: bodies in order and an acknowledgement.
type Batch struct {
	Bodies []Body
	// Ack is called exactly once. err is nil when every document of every
	// body is durable in every sink or dead-lettered; only then may the
	// source checkpoint. An error returned by Ack is logged and does not
	// stop the pipeline: the batch was delivered, and a source that could
	// not record that reads it again later.
	Ack func(ctx context.Context, err error) error
}

// Source produces batches. Read returns io.EOF when a finite source ends.
type Source interface {
	Read(ctx context.Context) (Batch, error)
	Close(ctx context.Context) error
}

// Sink stores documents. Write returns nil only when every document is
// durable, or a *Rejected error naming the documents that can never be
// stored (every other document is then durable). Any other error means
// nothing may be assumed stored.
type Sink interface {
	Write(ctx context.Context, docs []ecs.Event) error
	Close(ctx context.Context) error
}

// Rejection is one document a sink can never store, with the reason.
type Rejection struct {
	Index int   // index into the docs passed to Write
	Err   error // the sink's reason, e.g. Elasticsearch's mapping error
}

// Rejected is returned by Sink.Write when some documents were refused for
// reasons of their own (too large, a mapping conflict). The pipeline
// dead-letters exactly those and treats the rest of the call as durable.
type Rejected struct {
	Sink string
	Docs []Rejection
}

func (r *Rejected) Error() string {
	if len(r.Docs) == 0 {
		return r.Sink + ": no documents rejected"
	}
	return fmt.Sprintf("%s: %d document(s) rejected, first: %v", r.Sink, len(r.Docs), r.Docs[0].Err)
}

// AsRejected reports whether err is a *Rejected and returns it.
func AsRejected(err error) (*Rejected, bool) {
	var r *Rejected
	ok := errors.As(err, &r)
	return r, ok
}

// Readiness is implemented by components that can report whether they can
// currently do their work (connected, accepting writes).
type Readiness interface {
	// Ready returns nil when ready, or the reason it is not.
	Ready() error
}
