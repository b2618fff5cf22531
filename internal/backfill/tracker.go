package backfill

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/backfill/coverage"
	"github.com/sspr-exporter/sspr-exporter/internal/backfill/progress"
	"github.com/sspr-exporter/sspr-exporter/internal/backfill/state"
	"github.com/sspr-exporter/sspr-exporter/internal/pipeline"
	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Options configure a Tracker.
type Options struct {
	Store *state.Store
	// Decoder is the pipeline's decoder; the Tracker uses it (without
	// enrichment) to count what each chunk's records become.
	Decoder pipeline.Decoder
	// BatchBodies and BatchBytes bound the bodies of one batch (defaults
	// 1000 and 4 MiB): several chunks go to the pipeline together.
	BatchBodies, BatchBytes int
	// Queue is how many prepared chunks wait for the pipeline (default 16).
	Queue int
	// SaveInterval is the least time between two writes of the state
	// file (default 1s); each write holds every acknowledgement so far.
	SaveInterval time.Duration
	Noun         string // what the units are, for progress: "slices", "blobs"
	Logger       *slog.Logger
}

// Tracker is the pipeline's source during a backfill: it runs the Reader,
// prepares its chunks, and checkpoints what the outputs acknowledged.
type Tracker struct {
	reader Reader
	opts   Options
	dec    pipeline.Decoder

	startOnce sync.Once
	cancel    context.CancelFunc
	ready     chan *prepared
	finished  chan struct{} // closed once the reader returned
	readErr   error

	saveKick chan struct{}
	saveStop chan struct{}
	saveDone chan struct{}
	saveLog  *retry.Limiter

	mu      sync.Mutex
	units   map[string]*track
	order   []string // keys of the units begun, in order
	tenants map[string]bool
	planned bool

	began                 time.Time
	unitsDone, unitsTotal atomic.Int64
	workDone, workTotal   atomic.Int64
	workAtStart           atomic.Int64
	records, events       atomic.Int64
	dropped, dead         atomic.Int64
	sized                 atomic.Bool // units have sizes: work is bytes
}

// track follows one unit in this run. A unit begun again (an archive blob
// that changed while it was read) gets a new track; chunks of the old one
// are then ignored.
type track struct {
	unit  Unit
	seq   int // the next chunk's number
	next  int // the next chunk to commit
	acked map[int]*prepared
	done  bool
}

// prepared is a chunk ready for the pipeline, with what its records
// became.
type prepared struct {
	t       *track
	seq     int
	bodies  []stream.Body // what goes to the pipeline
	size    int
	counts  state.Counts
	hours   map[time.Time]int64
	bytes   int64
	end     *Resume
	final   bool
	release func()
}

// NewTracker returns the source that reads r.
func NewTracker(r Reader, o Options) *Tracker {
	if o.BatchBodies <= 0 {
		o.BatchBodies = 1000
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 4 << 20
	}
	if o.Queue <= 0 {
		o.Queue = 16
	}
	if o.SaveInterval <= 0 {
		o.SaveInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	dec := o.Decoder
	dec.Enrich = nil // counting needs no enrichment
	if dec.Now == nil {
		dec.Now = time.Now
	}
	return &Tracker{
		reader: r, opts: o, dec: dec,
		ready:    make(chan *prepared, o.Queue),
		finished: make(chan struct{}),
		saveKick: make(chan struct{}, 1),
		saveStop: make(chan struct{}),
		saveDone: make(chan struct{}),
		saveLog:  retry.NewLimiter(time.Minute),
		units:    map[string]*track{},
		tenants:  map[string]bool{},
		began:    time.Now(),
	}
}

// Start runs the reader and the state writer under ctx (reading stops
// when ctx ends; acknowledgements are still recorded until Close). Read
// starts them itself when Start was not called.
func (t *Tracker) Start(ctx context.Context) error {
	t.start(ctx)
	return nil
}

// start runs the reader and the state writer, once, under ctx.
func (t *Tracker) start(ctx context.Context) {
	t.startOnce.Do(func() {
		rctx, cancel := context.WithCancel(ctx)
		t.cancel = cancel
		t.began = time.Now()
		go func() {
			err := t.reader.Read(rctx, t)
			t.readErr = err
			close(t.finished)
		}()
		go t.saveLoop()
	})
}

// Begin registers a unit; see Feed.
func (t *Tracker) Begin(u Unit) (Resume, bool) {
	var res Resume
	done := false
	t.opts.Store.Update(func(f *state.File) {
		st := f.Units[u.Key]
		if st != nil && same(st, u) {
			if st.Done {
				done = true
				return
			}
			if st.Resumable() {
				res = Resume{Line: st.Line, Offset: st.Offset}
				return
			}
		}
		f.Units[u.Key] = &state.Unit{Tenant: u.Tenant, From: u.From.UTC(), To: u.To.UTC(), Version: u.Version, Modified: u.Modified.UTC()}
	})
	t.mu.Lock()
	defer t.mu.Unlock()
	prev, again := t.units[u.Key]
	t.units[u.Key] = &track{unit: u, acked: map[int]*prepared{}, done: done}
	t.tenants[u.Tenant] = true
	work := int64(1)
	if u.Size > 0 {
		t.sized.Store(true)
		work = u.Size
	}
	if again {
		// Read again from its start: what the old track did no longer counts.
		if prev.done {
			t.unitsDone.Add(-1)
		}
		t.workTotal.Add(-prev.unit.workOf())
	} else {
		t.order = append(t.order, u.Key)
		t.unitsTotal.Add(1)
	}
	t.workTotal.Add(work)
	switch {
	case done:
		t.unitsDone.Add(1)
		t.workDone.Add(work)
		t.workAtStart.Add(work)
	case res.Offset > 0:
		t.workDone.Add(res.Offset)
		t.workAtStart.Add(res.Offset)
	}
	return res, !done
}

func (u Unit) workOf() int64 {
	if u.Size > 0 {
		return u.Size
	}
	return 1
}

// same reports whether a checkpoint is of the content u names.
func same(st *state.Unit, u Unit) bool {
	return st.Version == u.Version && st.Tenant == u.Tenant && st.From.Equal(u.From) && st.To.Equal(u.To)
}

// Tenant declares a tenant; see Feed.
func (t *Tracker) Tenant(id string) {
	t.mu.Lock()
	t.tenants[id] = true
	t.mu.Unlock()
}

// Planned marks the plan complete; see Feed.
func (t *Tracker) Planned() {
	t.mu.Lock()
	t.planned = true
	t.mu.Unlock()
}

// Emit prepares a chunk in the caller's goroutine (so that readers with
// several workers prepare in parallel) and queues it for the pipeline.
func (t *Tracker) Emit(ctx context.Context, c Chunk) error {
	t.mu.Lock()
	tr := t.units[c.Unit]
	if tr == nil {
		t.mu.Unlock()
		release(c.Release)
		return errors.New("backfill: chunk of a unit that was not begun: " + c.Unit)
	}
	seq := tr.seq
	tr.seq++
	t.mu.Unlock()
	p := t.prepare(c, tr)
	p.t, p.seq = tr, seq
	if len(p.bodies) == 0 {
		// Nothing for the outputs: delivered as it is.
		release(p.release)
		t.commit(p)
		return nil
	}
	select {
	case t.ready <- p:
		return nil
	case <-ctx.Done():
		release(p.release)
		return ctx.Err()
	}
}

func release(f func()) {
	if f != nil {
		f()
	}
}

// prepare counts what c's records become and keeps, for the pipeline,
// the bodies that can be SSPR events or must be dead-lettered: exactly
// the ones the decoder would not drop unread, so that the outputs get
// what they would have got from the whole chunk.
func (t *Tracker) prepare(c Chunk, tr *track) *prepared {
	p := &prepared{hours: map[time.Time]int64{}, bytes: c.Bytes, end: c.End, final: c.Final, release: c.Release}
	hour := tr.unit.From.UTC().Truncate(time.Hour)
	scratch := foldBufs.Get().(*[]byte)
	defer foldBufs.Put(scratch)
	var keep []stream.Body
	for i := range c.Bodies {
		b := &c.Bodies[i]
		if b.Form == stream.FormRecord {
			h := hour
			if c.Hours != nil {
				h = c.Hours[i]
			}
			p.hours[h]++
		}
		if b.Form == stream.FormRecord && b.Err == nil && !t.dec.Catalog.MayMatch(b.Data, scratch) {
			p.counts.Records++
			p.counts.Dropped++
			continue
		}
		keep = append(keep, *b)
		p.size += len(b.Data)
	}
	if len(keep) == 0 {
		return p
	}
	res := t.dec.Decode(keep)
	p.counts.Records += res.Counts.Records
	p.counts.SSPR += res.Counts.SSPR
	p.counts.Dropped += res.Counts.Dropped
	p.counts.Unsupported += res.Counts.Unsupported
	p.counts.DeadLettered += int64(len(res.DeadLetters))
	for i := range res.Docs {
		ts := res.Docs[i].Time.UTC()
		p.counts.Add(state.Counts{First: ts, Last: ts})
	}
	p.bodies = keep
	return p
}

var foldBufs = sync.Pool{New: func() any { return new([]byte) }}

// Read hands the pipeline a batch of one or more prepared chunks: it
// waits for one, then takes what else is ready up to the batch limits.
func (t *Tracker) Read(ctx context.Context) (stream.Batch, error) {
	t.start(ctx)
	var batch []*prepared
	n, size := 0, 0
	add := func(p *prepared) {
		batch = append(batch, p)
		n += len(p.bodies)
		size += p.size
	}
	select {
	case p := <-t.ready:
		add(p)
	case <-t.finished:
		// Chunks emitted before the reader returned may still be queued.
		select {
		case p := <-t.ready:
			add(p)
		default:
			if t.readErr != nil && !errors.Is(t.readErr, context.Canceled) {
				return stream.Batch{}, t.readErr
			}
			return stream.Batch{}, io.EOF
		}
	case <-ctx.Done():
		return stream.Batch{}, ctx.Err()
	}
gather:
	for n < t.opts.BatchBodies && size < t.opts.BatchBytes {
		select {
		case p := <-t.ready:
			add(p)
		default:
			break gather
		}
	}
	bodies := make([]stream.Body, 0, n)
	for _, p := range batch {
		bodies = append(bodies, p.bodies...)
	}
	return stream.Batch{Bodies: bodies, Ack: func(_ context.Context, err error) error {
		for _, p := range batch {
			release(p.release)
			p.bodies = nil
			if err == nil {
				t.commit(p)
			}
		}
		return nil
	}}, nil
}

// commit records that p is delivered, and checkpoints its unit as far as
// every chunk before it is delivered too.
func (t *Tracker) commit(p *prepared) {
	t.mu.Lock()
	tr := p.t
	if t.units[tr.unit.Key] != tr {
		t.mu.Unlock() // a chunk of content read again since
		return
	}
	tr.acked[p.seq] = p
	var run []*prepared
	for q := tr.acked[tr.next]; q != nil; q = tr.acked[tr.next] {
		delete(tr.acked, tr.next)
		tr.next++
		run = append(run, q)
	}
	if len(run) == 0 {
		t.mu.Unlock()
		return
	}
	key := tr.unit.Key
	t.opts.Store.Update(func(f *state.File) {
		st := f.Units[key]
		for _, q := range run {
			st.Counts.Add(q.counts)
			for h, c := range q.hours {
				if st.Hours == nil {
					st.Hours = map[time.Time]int64{}
				}
				st.Hours[h] += c
			}
			if q.end != nil {
				st.Line, st.Offset = q.end.Line, q.end.Offset
			}
			if q.final {
				st.Done = true
			}
		}
	})
	for _, q := range run {
		t.records.Add(q.counts.Records)
		t.events.Add(q.counts.SSPR)
		t.dropped.Add(q.counts.Dropped)
		t.dead.Add(q.counts.DeadLettered)
		if t.sized.Load() {
			t.workDone.Add(q.bytes)
		}
		if q.final && !tr.done {
			tr.done = true
			t.unitsDone.Add(1)
			if !t.sized.Load() {
				t.workDone.Add(1)
			}
		}
	}
	t.mu.Unlock()
	select {
	case t.saveKick <- struct{}{}:
	default:
	}
}

// saveLoop writes the state file after acknowledgements, at most once
// per SaveInterval, and a last time when stopped.
func (t *Tracker) saveLoop() {
	defer close(t.saveDone)
	for {
		select {
		case <-t.saveKick:
		case <-t.saveStop:
			return
		}
		if err := t.opts.Store.Save(); err != nil {
			if ok, held := t.saveLog.Allow(time.Now()); ok {
				t.opts.Logger.Warn("backfill: cannot write the state file; acknowledged input will be read again if the backfill stops now",
					"path", t.opts.Store.Path(), "error", err.Error(), "similar_failures_not_logged", held)
			}
		}
		select {
		case <-time.After(t.opts.SaveInterval):
		case <-t.saveStop:
			return
		}
	}
}

// Close stops the reader and writes the state file a last time.
func (t *Tracker) Close(context.Context) error {
	t.startOnce.Do(func() {}) // a tracker never read starts nothing now
	if t.cancel != nil {
		t.cancel()
		// Free what the reader queued, so that a reader blocked in Emit
		// sees the cancellation and returns.
		for drained := false; !drained; {
			select {
			case p := <-t.ready:
				release(p.release)
			case <-t.finished:
				drained = true
			}
		}
		for drained := false; !drained; {
			select {
			case p := <-t.ready:
				release(p.release)
			default:
				drained = true
			}
		}
		close(t.saveStop)
		<-t.saveDone
	}
	return t.opts.Store.Save()
}

// Snapshot is the progress so far.
func (t *Tracker) Snapshot() progress.Snapshot {
	t.mu.Lock()
	planned := t.planned
	t.mu.Unlock()
	return progress.Snapshot{
		Noun: t.opts.Noun, UnitsDone: t.unitsDone.Load(), UnitsTotal: t.unitsTotal.Load(), Planned: planned,
		WorkDone: t.workDone.Load(), WorkTotal: t.workTotal.Load(), WorkAtStart: t.workAtStart.Load(),
		Records: t.records.Load(), Events: t.events.Load(), Elapsed: time.Since(t.began),
	}
}

// Totals are what the records read and acknowledged in this run became.
func (t *Tracker) Totals() state.Counts {
	return state.Counts{Records: t.records.Load(), SSPR: t.events.Load(), Dropped: t.dropped.Load(), DeadLettered: t.dead.Load()}
}

// Coverage is the report of the units this run planned, from their
// checkpoints (earlier runs' included).
func (t *Tracker) Coverage(command string, r Range) coverage.Report {
	t.mu.Lock()
	keys := slices.Clone(t.order)
	var tenants []string
	for id := range t.tenants {
		tenants = append(tenants, id)
	}
	planned := t.planned
	t.mu.Unlock()
	in := coverage.Input{Command: command, From: r.From, To: r.To, Tenants: tenants, Planned: planned}
	t.opts.Store.View(func(f *state.File) {
		for _, k := range keys {
			if u := f.Units[k]; u != nil {
				cp := *u
				cp.Hours = maps.Clone(u.Hours)
				in.Units = append(in.Units, cp)
			}
		}
	})
	return coverage.Compute(in)
}
