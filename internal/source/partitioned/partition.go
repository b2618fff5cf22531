package partitioned

import (
	"context"
	"sync"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/retry"
)

// Partition is one partition's state across the sessions that own it.
// Positions are -1 while unknown.
type Partition[K comparable] struct {
	key K
	// slot holds a token while a batch of the partition is out or being
	// received, so that its batches are strictly one after another, also
	// across sessions.
	slot chan struct{}

	mu          sync.Mutex
	owner       any       // the current *Ownership, nil when not owned
	ownedAt     time.Time // when the current ownership began
	end         int64
	endWritten  time.Time
	endAt       time.Time // when end was last measured
	received    int64
	count       int64
	processed   int64
	next        int64
	committed   int64
	committedAt time.Time
	redelivered int64
	commitErrs  int64
	fail        failure
	rateMark    int64
	rateAt      time.Time
	rate        float64
}

// failure is why a partition cannot be read, while it cannot.
type failure struct {
	err    error
	since  time.Time // zero when there is none
	last   time.Time // latest report
	warn   retry.Limiter
	warned bool // a report of it was let through
}

// Partition returns the partition with key, made on first use.
func (s *Source[K, M]) Partition(key K) *Partition[K] {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.parts[key]
	if p == nil {
		p = &Partition[K]{key: key, slot: make(chan struct{}, 1), end: -1, received: -1,
			processed: -1, next: -1, committed: -1, rateAt: time.Now()}
		p.fail.warn.Interval = s.opts.WarnEvery
		s.parts[key] = p
	}
	return p
}

// Lookup returns the partition with key, or nil before its first use.
func (s *Source[K, M]) Lookup(key K) *Partition[K] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parts[key]
}

// Partitions returns every partition used so far, in no order.
func (s *Source[K, M]) Partitions() []*Partition[K] {
	s.mu.Lock()
	defer s.mu.Unlock()
	parts := make([]*Partition[K], 0, len(s.parts))
	for _, p := range s.parts {
		parts = append(parts, p)
	}
	return parts
}

// Owned returns how many partitions this instance owns now.
func (s *Source[K, M]) Owned() int {
	n := 0
	for _, p := range s.Partitions() {
		if p.Owned() {
			n++
		}
	}
	return n
}

// Watch updates every partition's receive rate each interval and then
// calls refresh with the partitions owned, so that it measures their ends,
// until ctx ends. The next interval begins when refresh returns.
func (s *Source[K, M]) Watch(ctx context.Context, interval time.Duration, refresh func(context.Context, []*Partition[K])) {
	for retry.Wait(ctx, interval) {
		now := time.Now()
		var owned []*Partition[K]
		for _, p := range s.Partitions() {
			if p.tick(now) {
				owned = append(owned, p)
			}
		}
		refresh(ctx, owned)
	}
}

// Key returns the partition's key.
func (p *Partition[K]) Key() K { return p.key }

// Owned reports whether this instance owns the partition now.
func (p *Partition[K]) Owned() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.owner != nil
}

// SetEnd records the partition's end, measured at: the newest message's
// position (Event Hubs) or the one after it (Kafka's high watermark), and
// when that message was written, when known. The end only moves forward.
func (p *Partition[K]) SetEnd(end int64, written, at time.Time) {
	p.mu.Lock()
	if end >= p.end {
		p.end = end
		if !written.IsZero() {
			p.endWritten = written
		}
	}
	p.endAt = at
	p.mu.Unlock()
}

// Fail records that the partition cannot be read, and why, at now. A
// failure not reported for quiet is over and the next one starts afresh
// (0: only Heal ends it). It returns when the failure began and whether
// this report is worth a warning: the first of the failure and then one
// per Options.WarnEvery.
func (p *Partition[K]) Fail(err error, now time.Time, quiet time.Duration) (since time.Time, warn bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := &p.fail
	if f.since.IsZero() || (quiet > 0 && now.Sub(f.last) > quiet) {
		f.since, f.warned = now, false
		f.warn.Reset()
	}
	f.last, f.err = now, err
	if warn, _ = f.warn.Allow(now); warn {
		f.warned = true
	}
	return f.since, warn
}

// Heal ends the partition's failure, if any, and returns when it began
// (zero when there was none) and whether it was warned about.
func (p *Partition[K]) Heal() (since time.Time, warned bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := &p.fail
	since, warned = f.since, f.warned
	f.err, f.since, f.last, f.warned = nil, time.Time{}, time.Time{}, false
	f.warn.Reset()
	return since, warned
}

// Failure returns the partition's current failure and when it began; err
// is nil when there is none (see Fail for quiet).
func (p *Partition[K]) Failure(now time.Time, quiet time.Duration) (since time.Time, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failureLocked(now, quiet)
}

func (p *Partition[K]) failureLocked(now time.Time, quiet time.Duration) (time.Time, error) {
	f := &p.fail
	if f.since.IsZero() || (quiet > 0 && now.Sub(f.last) > quiet) {
		return time.Time{}, nil
	}
	return f.since, f.err
}

// State is a snapshot of one partition. Positions are -1 while unknown.
type State[K comparable] struct {
	Key   K
	Owned bool // this instance reads it now
	// End is the partition's end as last measured (see SetEnd), and
	// EndWritten when the message there was written, when known.
	End        int64
	EndWritten time.Time
	// EndStale is set while the partition is owned (or cannot be read)
	// and End was last measured longer ago than allowed, counting from the
	// start of the ownership at the earliest: a lag computed from it is a
	// lower bound.
	EndStale  bool
	Received  int64 // last message handed out
	Count     int64 // messages handed out since start
	Processed int64 // last message of an acknowledged batch
	// Next is the next message to process: the one after Processed, or
	// where the ownership resumed.
	Next         int64
	Committed    int64 // last message this instance committed
	CommittedAt  time.Time
	CommitAge    time.Duration // since CommittedAt; zero when none
	Redelivered  int64         // batches not delivered and read again
	CommitErrors int64         // commits refused or failed (a later one covers them)
	Rate         float64       // messages per second over the last Watch interval
	// Err is why the partition cannot be read, while it cannot, since
	// FailingSince (see Failure).
	Err          error
	FailingSince time.Time
}

// State returns a snapshot of the partition at now; End counts as stale
// after staleAfter, and a failure as over after quiet (see Fail).
func (p *Partition[K]) State(now time.Time, staleAfter, quiet time.Duration) State[K] {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := State[K]{
		Key: p.key, Owned: p.owner != nil, End: p.end, EndWritten: p.endWritten,
		Received: p.received, Count: p.count, Processed: p.processed, Next: p.next,
		Committed: p.committed, CommittedAt: p.committedAt,
		Redelivered: p.redelivered, CommitErrors: p.commitErrs, Rate: p.rate,
	}
	st.FailingSince, st.Err = p.failureLocked(now, quiet)
	// A partition that cannot be read counts as well: the client may
	// have given it up while the service does not answer, and its lag is
	// then just as old.
	if st.Owned || st.Err != nil {
		ref := p.endAt
		if p.ownedAt.After(ref) {
			ref = p.ownedAt
		}
		st.EndStale = now.Sub(ref) > staleAfter
	}
	if !p.committedAt.IsZero() {
		st.CommitAge = now.Sub(p.committedAt)
	}
	return st
}

func (p *Partition[K]) own(o any, resume int64) {
	p.mu.Lock()
	p.owner, p.ownedAt = o, time.Now()
	p.next = max(resume, -1)
	p.mu.Unlock()
}

func (p *Partition[K]) disown(o any) {
	p.mu.Lock()
	if p.owner == o {
		p.owner = nil
	}
	p.mu.Unlock()
}

func (p *Partition[K]) onReceived(n int, last, end int64) {
	p.mu.Lock()
	p.count += int64(n)
	p.received = last
	if end >= 0 {
		p.end, p.endAt = max(p.end, end), time.Now()
	}
	p.mu.Unlock()
}

func (p *Partition[K]) onRewind() {
	p.mu.Lock()
	p.redelivered++
	p.mu.Unlock()
}

func (p *Partition[K]) onProcessed(last int64) {
	p.mu.Lock()
	p.processed = max(p.processed, last)
	p.next = last + 1
	p.mu.Unlock()
}

func (p *Partition[K]) onCommitted(last int64, at time.Time) {
	p.mu.Lock()
	p.committed, p.committedAt = last, at
	p.mu.Unlock()
}

func (p *Partition[K]) onCommitError() {
	p.mu.Lock()
	p.commitErrs++
	p.mu.Unlock()
}

// tick updates the receive rate and reports whether the partition is owned.
func (p *Partition[K]) tick(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if el := now.Sub(p.rateAt).Seconds(); el > 0 {
		p.rate = float64(p.count-p.rateMark) / el
	}
	p.rateMark, p.rateAt = p.count, now
	return p.owner != nil
}
