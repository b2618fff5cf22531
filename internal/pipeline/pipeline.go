// Package pipeline runs source → decode → classify → normalize → sinks →
// ack, calling a batch's ack only when every document of the batch is
// durable in every sink or dead-lettered.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// NamedSink is a sink with the name used in dead letters and logs.
type NamedSink struct {
	Name string
	stream.Sink
}

// Options configure a Pipeline.
type Options struct {
	Decoder Decoder
	// Redrive puts a Redriver in front of the Decoder: dead-letter lines
	// in the input are processed again. Only replay sets it; from any
	// other input a record shaped like a dead letter is an ordinary record.
	Redrive bool
	// MaxInFlight is how many batches are processed at once. Batches of a
	// file source are then finished out of order; replay uses 1.
	MaxInFlight int
	// ShutdownGrace bounds how long in-flight batches may take to finish
	// once the run's context is cancelled.
	ShutdownGrace time.Duration
	Logger        *slog.Logger
	// Observe, when set, is told what each batch became, how long it took
	// and whether it was delivered (for metrics): the same counts that
	// Summary adds up.
	Observe func(c stream.Counts, d time.Duration, err error)
}

// Pipeline moves batches from a source to the sinks.
type Pipeline struct {
	src   stream.Source
	sinks []NamedSink
	dl    deadletter.Writer
	opts  Options

	decode func([]stream.Body) Result

	mu     sync.Mutex
	counts stream.Counts
}

// New returns a pipeline; it takes ownership of nothing: the caller closes
// the source, the sinks and the dead-letter writer.
func New(src stream.Source, sinks []NamedSink, dl deadletter.Writer, opts Options) *Pipeline {
	if opts.MaxInFlight < 1 {
		opts.MaxInFlight = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Decoder.Now == nil {
		opts.Decoder.Now = time.Now
	}
	p := &Pipeline{src: src, sinks: sinks, dl: dl, opts: opts}
	p.decode = p.opts.Decoder.Decode
	if opts.Redrive {
		p.decode = Redriver{Decoder: &p.opts.Decoder}.Decode
	}
	return p
}

// UndeliveredError is what Run returns when the shutdown grace period ran
// out before every batch in flight was delivered: those batches were not
// acknowledged (not checkpointed), so their input is read again later.
type UndeliveredError struct {
	Batches int64
	Grace   time.Duration
}

func (e *UndeliveredError) Error() string {
	return fmt.Sprintf("shutdown grace period (%s) ran out with %d batch(es) not delivered; they were not checkpointed and will be read again", e.Grace, e.Batches)
}

// Run reads until the source ends (nil), ctx is cancelled (nil once the
// batches in flight are delivered; an *UndeliveredError when the grace
// period ran out first), or a batch could not be delivered (the error;
// that batch is not acked).
func (p *Pipeline) Run(ctx context.Context) error {
	// In-flight work outlives ctx by up to the grace period so that a
	// shutdown finishes and acks what it already read.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var graceOver atomic.Bool
	stopGrace := context.AfterFunc(ctx, func() {
		t := time.NewTimer(p.opts.ShutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			graceOver.Store(true)
			cancelWork()
		case <-workCtx.Done():
		}
	})
	defer stopGrace()

	sem := make(chan struct{}, p.opts.MaxInFlight)
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
	}
	failed := make(chan struct{})
	var failedOnce sync.Once
	// Batches cut short by the end of the grace period failed because
	// they were stopped, not because anything broke.
	var undelivered atomic.Int64

	var readErr error
loop:
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		case <-failed:
			break loop
		}
		batch, err := p.src.Read(ctx)
		if err != nil {
			<-sem
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				readErr = fmt.Errorf("read source: %w", err)
			}
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := p.handle(workCtx, batch); err != nil {
				if graceOver.Load() {
					undelivered.Add(1)
					return
				}
				fail(err)
				failedOnce.Do(func() { close(failed) })
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if n := undelivered.Load(); n > 0 {
		return &UndeliveredError{Batches: n, Grace: p.opts.ShutdownGrace}
	}
	return readErr
}

// handle processes one batch and acks it.
func (p *Pipeline) handle(ctx context.Context, b stream.Batch) error {
	start := time.Now()
	res := p.decode(b.Bodies)
	err := p.deliver(ctx, &res)
	// One tally per batch, for the metrics and the summary alike.
	if p.opts.Observe != nil {
		p.opts.Observe(res.Counts, time.Since(start), err)
	}
	p.mu.Lock()
	p.counts.Add(res.Counts)
	p.mu.Unlock()
	if b.Ack != nil {
		// The documents are delivered whatever Ack says: a source that
		// cannot record it (a checkpoint store down) reads them again
		// later, which at-least-once allows. That is the source's to
		// report, not a reason to stop.
		if aerr := b.Ack(ctx, err); aerr != nil {
			p.opts.Logger.Warn("source could not record a delivered batch; it may be read again", "error", aerr.Error())
		}
	}
	return err
}

// deliver writes the documents to every sink and the dead letters to the
// dead-letter output, counting those written in res.
func (p *Pipeline) deliver(ctx context.Context, res *Result) error {
	for _, r := range res.DeadLetters {
		if err := p.deadLetter(ctx, res, r); err != nil {
			return err
		}
	}
	if len(res.Docs) == 0 {
		return nil
	}
	for _, s := range p.sinks {
		err := s.Write(ctx, res.Docs)
		if err == nil {
			continue
		}
		rej, ok := stream.AsRejected(err)
		if !ok {
			return fmt.Errorf("sink %s: %w", s.Name, err)
		}
		for _, d := range rej.Docs {
			if d.Index < 0 || d.Index >= len(res.Docs) {
				return fmt.Errorf("sink %s rejected document %d of %d", s.Name, d.Index, len(res.Docs))
			}
			if err := p.deadLetter(ctx, res, sinkDeadLetter(p.opts.Decoder.Now(), s.Name, res.DocPos[d.Index], d.Err, &res.Docs[d.Index])); err != nil {
				return err
			}
		}
	}
	return nil
}

// sinkDeadLetter keeps the refused document exactly as the sinks encode it.
func sinkDeadLetter(now time.Time, sink string, pos stream.Position, reason error, doc *ecs.Event) deadletter.Record {
	r := deadletter.New(now, deadletter.StageSink, deadletter.ReasonSinkRejected, pos, reason, doc.AppendJSON(nil))
	r.Sink = sink
	return r
}

func (p *Pipeline) deadLetter(ctx context.Context, res *Result, r deadletter.Record) error {
	if err := p.dl.Write(ctx, r); err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	res.Counts.DeadLettered++
	// Input of an unknown dead-letter version needs a newer build or a
	// person: no replay of this build will ever process it.
	level := slog.LevelWarn
	if r.Reason == deadletter.ReasonUnsupportedVersion {
		level = slog.LevelError
	}
	p.opts.Logger.Log(ctx, level, "dead letter", "stage", r.Stage, "reason", string(r.Reason), "sink", r.Sink, "source", r.Source.String(), "error", r.Error)
	return nil
}

// Summary returns what the records read so far became (replay prints it
// at the end).
func (p *Pipeline) Summary() stream.Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts.Clone()
}
