// Package bulk is the delivery core of the search-engine outputs
// (Elasticsearch and OpenSearch): ECS documents as bulk "create" actions
// with _id = event.id (hashed when too long) into indices named after the
// event's date, bounded requests in flight, retries with backoff, per
// document rejections, requests refused whole split down to the document
// that causes it, and readiness. Each engine's package brings its client
// (a Client), its texts (an Engine) and its setup assets; the bulk logic
// exists once, here.
package bulk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Sink writes ECS documents with bulk "create" requests. It implements
// stream.Sink and stream.Readiness; Write may be called concurrently.
type Sink struct {
	eng    Engine
	opts   Options
	log    *slog.Logger
	client Client
	sem    chan struct{}
	bufs   sync.Pool
	health *health
	stats  counters
	red    *secret.Redactor
	now    func() time.Time
	// pastLog keeps the warning about writes into indices past the
	// retention to one per log interval.
	pastLog *retry.Limiter

	mu     sync.Mutex
	closed bool
}

var (
	_ stream.Sink      = (*Sink)(nil)
	_ stream.Readiness = (*Sink)(nil)
)

// New returns a sink writing through client; opts must be valid. red
// takes the credentials out of what the sink reports.
func New(eng Engine, client Client, opts Options, red *secret.Redactor, logger *slog.Logger) *Sink {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	log := logger.With("sink", eng.Name)
	s := &Sink{
		eng:     eng,
		opts:    opts,
		log:     log,
		client:  client,
		sem:     make(chan struct{}, opts.Limits.MaxInFlight),
		health:  newHealth(eng.Name, log, opts.LogInterval),
		red:     red,
		now:     time.Now,
		pastLog: retry.NewLimiter(opts.LogInterval),
	}
	s.bufs.New = func() any { return new(bytes.Buffer) }
	return s
}

// Name is the sink's name in rejections and logs.
func (s *Sink) Name() string { return s.eng.Name }

// Ready returns nil while the cluster accepts writes, or the reason it
// does not (unreachable, credentials refused, index blocked...).
func (s *Sink) Ready() error { return s.health.ready() }

// Close releases idle connections. Write calls must have returned.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.client.CloseIdleConnections()
	return nil
}

// Write stores docs and returns nil when each is stored (created, or found
// already stored), a *stream.Rejected naming the documents the cluster
// refuses for reasons of their own, or the context's error when ctx ends
// first. Everything else is retried with backoff.
func (s *Sink) Write(ctx context.Context, docs []ecs.Event) error {
	var lastKey int
	var lastName string
	var lastPast bool
	past := 0 // documents for indices past the retention
	var pastIndex string
	now := s.now()
	err := s.write(ctx, len(docs), func(i int, b *bytes.Buffer) error {
		d := &docs[i]
		if d.Event.ID == "" {
			return errors.New("event.id is empty: the document cannot be stored exactly once")
		}
		t := d.Time
		if t.IsZero() {
			var err error
			if t, err = time.Parse(time.RFC3339Nano, d.Timestamp); err != nil {
				return fmt.Errorf("event time missing and @timestamp %q unparsable: the index cannot be chosen", d.Timestamp)
			}
		}
		y, m, dd := t.UTC().Date()
		if key := y*10000 + int(m)*100 + dd; key != lastKey || lastName == "" {
			lastKey, lastName = key, IndexName(s.opts.Index.Prefix, s.opts.Index.Granularity, t)
			lastPast = pastRetention(s.opts.Index.Granularity, s.opts.RetentionDays, t, now)
		}
		if lastPast {
			past++
			pastIndex = lastName
		}
		encodeEvent(b, lastName, d)
		return nil
	})
	if past > 0 {
		s.warnPastRetention(pastIndex, past)
	}
	return err
}

// RawDoc is a document prepared by the caller: its index, _id and source
// (one line of JSON) are sent as given.
type RawDoc struct {
	Index, ID string
	Source    []byte
}

// WriteRaw stores prepared documents through the same bulk path as Write:
// the same bounds, retries, splitting and rejections. The caller vouches
// for the index names and ids; nothing is hashed or checked.
func (s *Sink) WriteRaw(ctx context.Context, docs []RawDoc) error {
	return s.write(ctx, len(docs), func(i int, b *bytes.Buffer) error {
		writeAction(b, docs[i].Index, docs[i].ID)
		b.Write(docs[i].Source)
		b.WriteByte('\n')
		return nil
	})
}

// write encodes n documents into bounded chunks, sends them with at most
// max_in_flight requests open, and collects every document's fate. encode
// writes document i's action and source lines, or says why it cannot be
// sent at all (a rejection).
func (s *Sink) write(ctx context.Context, n int, encode func(i int, b *bytes.Buffer) error) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return errors.New(s.eng.Name + ": write after close")
	}
	if n == 0 {
		return nil
	}

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		rejected []stream.Rejection
		firstErr error
	)
	collect := func(r result) {
		mu.Lock()
		defer mu.Unlock()
		rejected = append(rejected, r.rejected...)
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
	}

	scratch := s.getBuf()
	defer s.bufs.Put(scratch)

	cur := chunk{buf: s.getBuf()}
	flush := func() bool {
		if len(cur.items) == 0 {
			return true
		}
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			s.bufs.Put(cur.buf)
			cur = chunk{buf: s.getBuf()}
			return false
		}
		c := cur
		cur = chunk{buf: s.getBuf()}
		held := int64(c.buf.Len())
		s.stats.hold(held)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-s.sem }()
			defer s.stats.held.Add(-held)
			r := s.sendChunk(ctx, c)
			s.putBuf(c.buf)
			collect(r)
		}()
		return true
	}

	var pre []stream.Rejection // refused before sending; goroutines only touch rejected
	ok := true
	for i := range n {
		scratch.Reset()
		if err := encode(i, scratch); err != nil {
			pre = appendRejection(pre, i, err)
			continue
		}
		if len(cur.items) > 0 && cur.buf.Len()+scratch.Len() > s.opts.Limits.MaxBytes {
			if ok = flush(); !ok {
				break
			}
		}
		start := cur.buf.Len()
		cur.buf.Write(scratch.Bytes())
		cur.items = append(cur.items, item{doc: i, start: start, end: cur.buf.Len()})
		if len(cur.items) >= s.opts.Limits.MaxDocs {
			if ok = flush(); !ok {
				break
			}
		}
	}
	if ok {
		flush()
	}
	s.putBuf(cur.buf)
	wg.Wait()
	rejected = append(rejected, pre...)

	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s bulk: %w", s.eng.Name, err)
	}
	if firstErr != nil {
		return fmt.Errorf("%s bulk: %w", s.eng.Name, firstErr)
	}
	if len(rejected) > 0 {
		sort.Slice(rejected, func(a, b int) bool { return rejected[a].Index < rejected[b].Index })
		return &stream.Rejected{Sink: s.eng.Name, Docs: rejected}
	}
	return nil
}

// warnPastRetention counts n documents written into an index past the
// retention, and says so at most once per log_interval.
func (s *Sink) warnPastRetention(index string, n int) {
	total := s.stats.pastRetention.Add(int64(n))
	if ok, _ := s.pastLog.Allow(time.Now()); !ok {
		return
	}
	s.log.Warn(s.eng.RetentionWarning,
		"index", index, "retention_days", s.opts.RetentionDays, "documents_past_retention_total", total,
		"hint", s.eng.RetentionHint)
}

func appendRejection(rs []stream.Rejection, i int, err error) []stream.Rejection {
	return append(rs, stream.Rejection{Index: i, Err: err})
}

func (s *Sink) getBuf() *bytes.Buffer {
	b := s.bufs.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

// putBuf keeps buffers up to the request bound for reuse; an oversized
// one (a single huge document) is left to the collector.
func (s *Sink) putBuf(b *bytes.Buffer) {
	if b.Cap() <= 2*s.opts.Limits.MaxBytes {
		s.bufs.Put(b)
	}
}

// ItemError is the cluster's refusal of one document, as carried in a
// stream.Rejection.
type ItemError struct {
	Sink   string // the sink's name
	Status int    // the item's HTTP status
	Type   string // e.g. document_parsing_exception
	Reason string // type, reason and cause as the engine wrote them
}

func (e *ItemError) Error() string { return e.Sink + " refused the document: " + e.Reason }

// Stats are the sink's counters since New.
type Stats struct {
	Created      int64 // documents answered 201
	Duplicates   int64 // documents answered 409: already stored
	Rejected     int64 // documents refused by the cluster for reasons of their own
	Retried      int64 // document attempts repeated after a failure
	BulkRequests int64 // bulk requests sent, including failed ones
	HeldBytes    int64 // bytes of bulk bodies held by requests in flight now
	PeakHeld     int64 // most bytes of bulk bodies ever held at once
	// PastRetention counts documents written into an index whose age,
	// from the date in its name, has reached the retention.
	PastRetention int64
}

// Stats returns the counters, for metrics.
func (s *Sink) Stats() Stats {
	return Stats{
		Created: s.stats.created.Load(), Duplicates: s.stats.duplicates.Load(),
		Rejected: s.stats.rejected.Load(), Retried: s.stats.retried.Load(),
		BulkRequests: s.stats.requests.Load(), HeldBytes: s.stats.held.Load(), PeakHeld: s.stats.peak.Load(),
		PastRetention: s.stats.pastRetention.Load(),
	}
}

type counters struct {
	created, duplicates, rejected, retried, requests atomic.Int64
	held, peak                                       atomic.Int64
	pastRetention                                    atomic.Int64
}

func (c *counters) hold(n int64) {
	now := c.held.Add(n)
	for {
		p := c.peak.Load()
		if now <= p || c.peak.CompareAndSwap(p, now) {
			return
		}
	}
}
