package file

import (
	"context"
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

// New opens the sink's destination.
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
	buf   []byte
	lines [][]byte
}

func (s *Sink) getBuf() *encodeBuf {
	if b, ok := s.bufs.Get().(*encodeBuf); ok {
		return b
	}
	// AppendJSON leaves '<', '>' and '&' (common in user agents and URLs)
	// unescaped, which keeps the lines readable and greppable.
	return &encodeBuf{}
}

// Write encodes docs, one line each, and returns once the lines are written,
// flushed and (for regular files) fsynced. Every ecs.Event can be encoded,
// so no document is ever rejected.
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
		if cap(b.buf) <= 16<<20 {
			b.buf = b.buf[:0]
			clear(b.lines)
			b.lines = b.lines[:0]
			s.bufs.Put(b)
		}
	}()
	b.buf = b.buf[:0]
	ends := make([]int, 0, len(docs))
	for i := range docs {
		b.buf = append(docs[i].AppendJSON(b.buf), '\n')
		ends = append(ends, len(b.buf))
	}
	data := b.buf
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
