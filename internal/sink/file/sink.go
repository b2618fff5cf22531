package file

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Name identifies this sink in rejections and logs.
const Name = "file"

// Option adjusts a Sink beyond its Config.
type Option func(*Options)

// WithClock sets the clock used for rotation times and backup names.
func WithClock(now func() time.Time) Option { return func(o *Options) { o.Now = now } }

// WithStdout sets the destination used when the path is "-".
func WithStdout(w io.Writer) Option { return func(o *Options) { o.Std = w } }

// Sink writes each document as one JSON line. It implements stream.Sink and
// stream.Readiness.
type Sink struct {
	w    *Writer
	bufs sync.Pool

	mu      sync.Mutex
	lastErr error
}

var (
	_ stream.Sink      = (*Sink)(nil)
	_ stream.Readiness = (*Sink)(nil)
)

// New opens the sink's destination. The caller decides whether the section
// is enabled; New does not look at cfg.Enabled.
func New(cfg Config, logger *slog.Logger, opts ...Option) (*Sink, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("file sink config: %v", errs[0])
	}
	o := Options{
		Path:       cfg.Path,
		MaxBytes:   cfg.MaxBytes,
		MaxAge:     cfg.MaxAge,
		MaxBackups: cfg.MaxBackups,
		Logger:     logger,
	}
	for _, opt := range opts {
		opt(&o)
	}
	w, err := OpenWriter(o)
	if err != nil {
		return nil, fmt.Errorf("file sink: %w", err)
	}
	return &Sink{w: w}, nil
}

type encodeBuf struct {
	buf   bytes.Buffer
	enc   *json.Encoder
	lines [][]byte
}

func (s *Sink) getBuf() *encodeBuf {
	if b, ok := s.bufs.Get().(*encodeBuf); ok {
		return b
	}
	b := &encodeBuf{}
	b.enc = json.NewEncoder(&b.buf)
	// Audit fields such as user agents and URLs carry '<', '>' and '&'; the
	// HTML escapes would only make the lines harder to read and grep.
	b.enc.SetEscapeHTML(false)
	return b
}

// Write encodes docs, one line each, and returns once the lines are written,
// flushed and (for regular files) fsynced. A document that cannot be encoded
// is reported in a *stream.Rejected; the others are then durable.
func (s *Sink) Write(ctx context.Context, docs []ecs.Event) error {
	if len(docs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	b := s.getBuf()
	defer func() {
		// Keep very large buffers out of the pool so one huge batch does
		// not pin its memory for the life of the process.
		if b.buf.Cap() <= 16<<20 {
			b.buf.Reset()
			clear(b.lines)
			b.lines = b.lines[:0]
			s.bufs.Put(b)
		}
	}()
	b.buf.Reset()
	ends := make([]int, 0, len(docs))
	var rejected []stream.Rejection
	for i := range docs {
		// json.Encoder writes nothing when encoding fails, so the buffer
		// only ever holds whole lines.
		if err := b.enc.Encode(&docs[i]); err != nil {
			rejected = append(rejected, stream.Rejection{Index: i, Err: fmt.Errorf("json encode: %w", err)})
			continue
		}
		ends = append(ends, b.buf.Len())
	}
	data := b.buf.Bytes()
	start := 0
	for _, end := range ends {
		b.lines = append(b.lines, data[start:end])
		start = end
	}
	err := s.w.WriteLines(b.lines...)
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	if len(rejected) > 0 {
		return &stream.Rejected{Sink: Name, Docs: rejected}
	}
	return nil
}

// Ready reports the error of the last write, if it failed.
func (s *Sink) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr != nil {
		return fmt.Errorf("file sink: last write failed: %w", s.lastErr)
	}
	return nil
}

// Close flushes and closes the destination.
func (s *Sink) Close(context.Context) error {
	if err := s.w.Close(); err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	return nil
}
