// Package file is the source that reads Entra records from files, globs and
// standard input, in any of the shapes the entra package decodes.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/entra"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Stdin is the path that names standard input.
const Stdin = "-"

// Options configure a Source.
type Options struct {
	Paths        []string // files and globs; "-" is standard input
	Follow       bool     // keep reading files as they grow, and pick up new matches
	PollInterval time.Duration
	MaxBodyBytes int
	Stdin        io.Reader // defaults to os.Stdin
	Logger       *slog.Logger

	// Batches hold up to this many bodies or bytes (defaults 256, 4 MiB).
	BatchBodies int
	BatchBytes  int
}

// Source reads the files in order (or concurrently when following).
type Source struct {
	opts   Options
	files  []string
	bodies chan *valueBuf
	errs   chan error
	done   chan struct{} // closed when the reading goroutine returned

	mu      sync.Mutex
	cancel  context.CancelFunc // set by Start
	closed  bool
	drained sync.Once
}

// Resolve expands globs and checks that every input exists and can be
// read, so that a usage error is reported before anything is read. A glob
// that matches nothing is an error unless following (files may appear).
func Resolve(paths []string, follow bool) ([]string, error) {
	var out []string
	for _, p := range paths {
		if p == Stdin {
			out = append(out, p)
			continue
		}
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("input %q: bad pattern: %w", p, err)
		}
		if matches == nil && !hasMeta(p) {
			matches = []string{p}
		}
		if len(matches) == 0 && !follow {
			return nil, fmt.Errorf("input %q: no file matches", p)
		}
		for _, m := range matches {
			f, err := os.Open(m)
			if err != nil {
				return nil, fmt.Errorf("input: %w", err)
			}
			st, err := f.Stat()
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("input: %w", err)
			}
			if st.IsDir() {
				return nil, fmt.Errorf("input %q: is a directory", m)
			}
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

func hasMeta(p string) bool {
	for _, c := range p {
		switch c {
		case '*', '?', '[', '\\':
			return true
		}
	}
	return false
}

// Open resolves the inputs; Start reads them.
func Open(opts Options) (*Source, error) {
	files, err := Resolve(opts.Paths, opts.Follow)
	if err != nil {
		return nil, err
	}
	if opts.Stdin == nil {
		opts.Stdin = os.Stdin
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.BatchBodies <= 0 {
		opts.BatchBodies = 256
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 4 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Source{opts: opts, files: files, bodies: make(chan *valueBuf, 16), errs: make(chan error, 1), done: make(chan struct{})}, nil
}

// Start reads the inputs in the background, under ctx: reading stops when
// ctx ends or at Close, and Read then reports the end. A source starts
// once, and not after Close.
func (s *Source) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("file source: start after close")
	case s.cancel != nil:
		return errors.New("file source: already started")
	}
	ctx, s.cancel = context.WithCancel(ctx)
	go func() {
		defer close(s.done)
		defer close(s.bodies)
		if err := s.produce(ctx); err != nil {
			s.errs <- err
		}
	}()
	return nil
}

// produce reads every input. Without follow the files are read one after
// the other so output keeps input order.
func (s *Source) produce(ctx context.Context) error {
	if !s.opts.Follow {
		for _, f := range s.files {
			if err := s.readFile(ctx, f); err != nil {
				return err
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	started := map[string]bool{}
	start := func(f string) {
		started[f] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.readFile(ctx, f); err != nil && ctx.Err() == nil {
				select {
				case errc <- err:
				default:
				}
			}
		}()
	}
	for _, f := range s.files {
		start(f)
	}
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case <-t.C:
			// New files matching the patterns (an archive writes a new
			// PT1H.json every hour) are picked up.
			more, _ := Resolve(s.opts.Paths, true)
			for _, f := range more {
				if !started[f] && f != Stdin {
					start(f)
				}
			}
		}
	}
}

func (s *Source) readFile(ctx context.Context, name string) error {
	var r io.Reader
	pos := stream.Position{Kind: "file", File: name}
	if name == Stdin {
		r = abandonable(ctx, s.opts.Stdin)
		pos = stream.Position{Kind: "stdin"}
	} else {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("input: %w", err)
		}
		defer f.Close()
		r = f
		if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() {
			r = abandonable(ctx, f) // a named pipe or a device
		}
		if s.opts.Follow {
			r = &followReader{ctx: ctx, r: r, poll: s.opts.PollInterval}
		}
	}
	sc := entra.NewScanner(r, s.opts.MaxBodyBytes)
	for {
		v, err := sc.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("input %s: %w", pos.String(), err)
		}
		vb := newValueBuf(v.Data)
		if v.Err != nil {
			b := stream.Body{Data: vb.data, Pos: pos, Err: v.Err}
			b.Pos.Line = v.Line
			vb.bodies = append(vb.bodies, b)
		} else {
			// The scanner has split the value into records already; hand
			// them on as such so they are not scanned twice.
			_ = v.Records(func(r entra.RawRecord) error {
				end := r.Offset + len(r.Data)
				b := stream.Body{Data: vb.data[r.Offset:end:end], Pos: pos, Err: r.Err, Form: stream.FormRecord}
				b.Pos.Line = r.Line
				vb.bodies = append(vb.bodies, b)
				return nil
			})
		}
		select {
		case s.bodies <- vb:
		case <-ctx.Done():
			return nil
		}
	}
}

// valueBuf holds one top-level value's bytes and the bodies cut from it
// (its records). A value's bodies always travel in one batch; recycling
// these buffers when that batch is acknowledged keeps a replay of hundreds
// of megabytes from allocating (and collecting) its whole size.
type valueBuf struct {
	data   []byte
	bodies []stream.Body
}

var valueBufs sync.Pool

func newValueBuf(src []byte) *valueBuf {
	vb, _ := valueBufs.Get().(*valueBuf)
	if vb == nil {
		vb = new(valueBuf)
	}
	vb.data = append(vb.data[:0], src...)
	vb.bodies = vb.bodies[:0]
	return vb
}

func (vb *valueBuf) release() {
	clear(vb.bodies)
	valueBufs.Put(vb)
}

// batchBufs are the slices of one batch, recycled with it.
type batchBufs struct {
	bodies []stream.Body
	bufs   []*valueBuf
}

var batchSlices = sync.Pool{New: func() any { return new(batchBufs) }}

// Read returns the next batch: it waits for one body, then takes what else
// is ready up to the batch limits, so a slow trickle is not held back.
// Acknowledging the batch frees its buffers; its bodies must not be used
// after that.
func (s *Source) Read(ctx context.Context) (stream.Batch, error) {
	s.mu.Lock()
	started := s.cancel != nil || s.closed
	s.mu.Unlock()
	if !started {
		return stream.Batch{}, errors.New("file source: read before start")
	}
	var batch stream.Batch
	sl := batchSlices.Get().(*batchBufs)
	batch.Bodies, sl.bufs = sl.bodies[:0], sl.bufs[:0]
	bufs := sl.bufs
	size := 0
	add := func(vb *valueBuf) {
		batch.Bodies = append(batch.Bodies, vb.bodies...)
		bufs = append(bufs, vb)
		size += len(vb.data)
	}
	select {
	case it, ok := <-s.bodies:
		if !ok {
			return stream.Batch{}, s.endErr()
		}
		add(it)
	case <-ctx.Done():
		return stream.Batch{}, ctx.Err()
	}
	for len(batch.Bodies) < s.opts.BatchBodies && size < s.opts.BatchBytes {
		select {
		case it, ok := <-s.bodies:
			if !ok {
				break
			}
			add(it)
			continue
		default:
		}
		break
	}
	batch.Ack = func(context.Context, error) error {
		// Files are read once: there is nothing to checkpoint, only
		// memory to give back.
		for _, vb := range bufs {
			vb.release()
		}
		clear(batch.Bodies)
		sl.bodies, sl.bufs = batch.Bodies[:0], bufs[:0]
		batchSlices.Put(sl)
		return nil
	}
	return batch, nil
}

func (s *Source) endErr() error {
	select {
	case err := <-s.errs:
		return err
	default:
		return io.EOF
	}
}

// Close stops reading and waits, within ctx, for the reading goroutine to
// return. A read of standard input or of a pipe cannot be interrupted: it
// is abandoned, and its goroutine ends when the read returns (what it read
// then is dropped).
func (s *Source) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	cancel := s.cancel
	s.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	// Drain so a producer blocked on a send can see the cancellation.
	s.drained.Do(func() {
		go func() {
			for range s.bodies {
			}
		}()
	})
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("file source close: reading has not stopped: %w", ctx.Err())
	}
}

// followReader turns end of file into a wait for more data. Each time it
// runs out of data it first says so with entra.ErrPending, so that the
// scanner can settle a value the file shows to be cut short (a complete
// line after a cut one), and only then waits. Closing the source ends a
// wait with the context's error: a value still being written is not
// dead-lettered for want of its end.
type followReader struct {
	ctx  context.Context
	r    io.Reader
	poll time.Duration
	told bool // ErrPending was returned since the last data
}

func (f *followReader) Read(p []byte) (int, error) {
	for {
		n, err := f.r.Read(p)
		if n > 0 || (err != nil && err != io.EOF) {
			f.told = false
			return n, err
		}
		if !f.told {
			f.told = true
			return 0, entra.ErrPending
		}
		select {
		case <-f.ctx.Done():
			return 0, f.ctx.Err()
		case <-time.After(f.poll):
		}
	}
}

// abandonable makes a read of r end when ctx ends, for inputs whose reads
// cannot be interrupted (standard input, pipes): the read goes on in a
// goroutine of its own, which ends when it returns; what it got after ctx
// ended is dropped.
func abandonable(ctx context.Context, r io.Reader) io.Reader {
	return &abandonReader{ctx: ctx, r: r, got: make(chan pendingRead, 1)}
}

type abandonReader struct {
	ctx     context.Context
	r       io.Reader
	buf     []byte // the read in flight fills this, never the caller's p
	waiting bool   // a read is in flight
	got     chan pendingRead
}

type pendingRead struct {
	n   int
	err error
}

func (a *abandonReader) Read(p []byte) (int, error) {
	if err := a.ctx.Err(); err != nil {
		return 0, err
	}
	if !a.waiting {
		if len(a.buf) < len(p) {
			a.buf = make([]byte, len(p))
		}
		a.waiting = true
		go func(buf []byte) {
			n, err := a.r.Read(buf)
			a.got <- pendingRead{n, err}
		}(a.buf[:len(p)])
	}
	select {
	case res := <-a.got:
		a.waiting = false
		return copy(p, a.buf[:res.n]), res.err
	case <-a.ctx.Done():
		return 0, a.ctx.Err()
	}
}
