// Package partitioned is the skeleton the streaming sources (Event Hubs and
// Kafka) share. Such a source owns some partitions of its input, each for
// one session at a time; it reads every owned partition on its own and
// hands out one batch of a partition at a time, whose acknowledgement runs
// once and then commits the batch's position. Close stops handing out,
// waits for the batches out to be acknowledged, and only then lets the
// partitions go. Each partition keeps its progress and its failure for the
// source's stats and readiness.
//
// A source brings its client through Session: receive a partition's next
// messages, read again from a position, commit a position.
package partitioned

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Options configure a Source.
type Options struct {
	// Name starts the source's errors, e.g. "eventhubs".
	Name string
	// MaxBatchesInMemory bounds the batches received and not yet
	// acknowledged, over all partitions; 0 leaves only the bound of one
	// per partition.
	MaxBatchesInMemory int
	// WarnEvery is how often a partition's lasting failure is worth a
	// warning (see Partition.Fail).
	WarnEvery time.Duration
}

// Source is the part of a partitioned source its implementations share:
// the batches Read takes from, the partitions, the goroutines Start runs
// and the shutdown Close does. K identifies a partition; M is the message
// a Session commits.
type Source[K comparable, M any] struct {
	opts    Options
	batches chan stream.Batch // sessions hand their batches to Read
	memory  chan struct{}     // a token per batch in memory, when bounded
	out     handout

	// stopCtx ends when Close begins: no new batches.
	stopCtx    context.Context
	stopCancel context.CancelFunc
	// abandon is closed once Close stops waiting for acknowledgements, so
	// that partitions let go stop waiting too.
	abandon chan struct{}

	mu     sync.Mutex
	runCtx context.Context // nil before Start
	cancel context.CancelFunc
	ready  error
	parts  map[K]*Partition[K]

	wg        sync.WaitGroup // the goroutines of Start
	closeOnce sync.Once
	closeErr  error
}

// New returns a source that has no partition yet and runs nothing.
func New[K comparable, M any](opts Options) *Source[K, M] {
	s := &Source[K, M]{
		opts:    opts,
		batches: make(chan stream.Batch),
		abandon: make(chan struct{}),
		parts:   map[K]*Partition[K]{},
	}
	if opts.MaxBatchesInMemory > 0 {
		s.memory = make(chan struct{}, opts.MaxBatchesInMemory)
	}
	s.stopCtx, s.stopCancel = context.WithCancel(context.Background())
	s.out.idle = make(chan struct{})
	return s
}

// Start runs each of run in a goroutine of its own, under a context that
// ends with ctx or when Close lets the partitions go. A source starts
// once, and not after Close.
func (s *Source[K, M]) Start(ctx context.Context, run ...func(context.Context)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runCtx != nil {
		return fmt.Errorf("%s: already started", s.opts.Name)
	}
	if s.Closing() {
		return fmt.Errorf("%s: start after close", s.opts.Name)
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.runCtx = ctx
	for _, fn := range run {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			fn(ctx)
		}()
	}
	return nil
}

// Read returns the next batch of one partition. It returns io.EOF once
// Close has begun, and an error when the context of Start ended first.
func (s *Source[K, M]) Read(ctx context.Context) (stream.Batch, error) {
	s.mu.Lock()
	run := s.runCtx
	s.mu.Unlock()
	if run == nil {
		if s.Closing() {
			return stream.Batch{}, io.EOF
		}
		return stream.Batch{}, fmt.Errorf("%s: read before start", s.opts.Name)
	}
	select {
	case b := <-s.batches:
		return b, nil
	case <-s.stopCtx.Done():
		return stream.Batch{}, io.EOF
	case <-ctx.Done():
		return stream.Batch{}, ctx.Err()
	case <-run.Done():
		if s.Closing() {
			return stream.Batch{}, io.EOF
		}
		return stream.Batch{}, fmt.Errorf("%s: stopped: %w", s.opts.Name, context.Cause(run))
	}
}

// Closing reports whether Close has begun.
func (s *Source[K, M]) Closing() bool { return s.stopCtx.Err() != nil }

// UntilClose returns a context that also ends when Close begins, for calls
// that must not outlast the hand-out (a fetch that would fill a batch).
func (s *Source[K, M]) UntilClose(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.stopCtx, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// Close shuts the source down, once: it stops handing out batches, waits
// (within ctx) for those out to be acknowledged and committed, then ends
// the context of Start, waits for its goroutines to return, and calls
// release (which may be nil) to close the source's clients. Later calls
// return what the first one did.
func (s *Source[K, M]) Close(ctx context.Context, release func(context.Context) error) error {
	s.closeOnce.Do(func() {
		var errs []error
		idle := s.out.close()
		s.stopCancel()
		select {
		case <-idle:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("%s close: batches still unacknowledged (they will be read again): %w", s.opts.Name, ctx.Err()))
		}
		close(s.abandon)
		s.mu.Lock()
		cancel := s.cancel
		s.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		s.wg.Wait()
		if release != nil {
			errs = append(errs, release(ctx))
		}
		s.SetReady(fmt.Errorf("%s: closed", s.opts.Name))
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// SetReady records why the source is not ready, or nil when it is.
func (s *Source[K, M]) SetReady(err error) {
	s.mu.Lock()
	s.ready = err
	s.mu.Unlock()
}

// ClearReady clears the recorded reason when it is one that match accepts:
// a success ends only the failure it proves wrong.
func (s *Source[K, M]) ClearReady(match func(error) bool) {
	s.mu.Lock()
	if s.ready != nil && match(s.ready) {
		s.ready = nil
	}
	s.mu.Unlock()
}

// Ready returns the reason recorded by SetReady.
func (s *Source[K, M]) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

// handout counts the batches out and refuses new ones once closing, so
// that Close waits for exactly the batches handed out before it began.
type handout struct {
	mu      sync.Mutex
	closing bool
	n       int
	idle    chan struct{} // closed once closing with no batch out
}

// add counts one more batch out; it reports false once closing.
func (h *handout) add() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.n++
	return true
}

func (h *handout) done() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n--
	if h.closing && h.n == 0 {
		close(h.idle)
	}
}

// close refuses new batches and returns a channel closed once none is out.
func (h *handout) close() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closing {
		h.closing = true
		if h.n == 0 {
			close(h.idle)
		}
	}
	return h.idle
}
