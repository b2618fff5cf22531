package eventhubs

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// Stats is a snapshot of the source for operators.
type Stats struct {
	Hub        string
	Namespace  string
	Ready      error
	Partitions []PartitionStats // every partition of the hub, by id
}

// PartitionStats describes one partition as this instance sees it. Sequence
// numbers are -1 while unknown.
type PartitionStats struct {
	ID    string
	Owned bool // this instance reads it now
	// LastEnqueuedSequence and LastEnqueuedTime are the newest event in the
	// partition, read every stats_interval while the partition is owned.
	LastEnqueuedSequence int64
	LastEnqueuedTime     time.Time
	ReceivedSequence     int64 // last event handed out in a batch
	ProcessedSequence    int64 // last event of an acknowledged batch
	CheckpointSequence   int64 // last event checkpointed by this instance
	// Lag is LastEnqueuedSequence − ProcessedSequence, when both are known.
	Lag int64
	// LagStale is set while LastEnqueuedSequence could not be refreshed for
	// two stats intervals: Lag is then a lower bound, not the backlog.
	LagStale bool
	// Error is why the partition cannot be read, while it cannot; it is
	// empty when the partition reads (or idles) normally.
	Error string
	// FailingSince is when the partition started to fail; zero when Error
	// is empty.
	FailingSince time.Time
	// EventsPerSecond is the receive rate over the last stats interval.
	EventsPerSecond float64
	LastCheckpoint  time.Time
	// CheckpointAge is the time since LastCheckpoint; zero when none.
	CheckpointAge time.Duration
	Received      int64 // events handed out since start
}

// partition holds one partition's state across the sessions that own it.
type partition struct {
	id string
	// slot holds a token while a batch of the partition is out or being
	// read, so that batches of a partition are strictly one after another.
	slot chan struct{}

	mu          sync.Mutex
	session     *session
	ownedAt     time.Time // when the current session began
	lastEnqSeq  int64
	lastEnqTime time.Time
	lastEnqAt   time.Time // when lastEnqSeq was last read from the hub
	receivedSeq int64
	processed   int64
	checkpoint  int64
	lastCkpt    time.Time
	received    int64
	rateMark    int64
	rateAt      time.Time
	rate        float64

	// The current failure (see health.go); failSince is zero when none.
	failSince time.Time
	failLast  time.Time // latest report of the failure
	failCause string
	warnedAt  time.Time // latest warning about it
}

func (s *Source) partition(id string) *partition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.partitionLocked(id)
}

func (s *Source) partitionLocked(id string) *partition {
	p := s.partitions[id]
	if p == nil {
		p = &partition{id: id, slot: make(chan struct{}, 1), lastEnqSeq: -1, receivedSeq: -1, processed: -1, checkpoint: -1, rateAt: time.Now()}
		s.partitions[id] = p
	}
	return p
}

func (p *partition) begin(sess *session) {
	p.mu.Lock()
	p.session, p.ownedAt = sess, time.Now()
	p.mu.Unlock()
}

func (p *partition) end(sess *session) {
	p.mu.Lock()
	if p.session == sess {
		p.session = nil
	}
	p.mu.Unlock()
}

func (p *partition) onReceived(n int, seq int64) {
	p.mu.Lock()
	p.received += int64(n)
	p.receivedSeq = seq
	p.mu.Unlock()
}

func (p *partition) onProcessed(seq int64) {
	p.mu.Lock()
	p.processed = max(p.processed, seq)
	p.mu.Unlock()
}

func (p *partition) onCheckpointed(seq int64, at time.Time) {
	p.mu.Lock()
	p.checkpoint = seq
	p.lastCkpt = at
	p.mu.Unlock()
}

// partitionList returns the partitions known so far, in no order.
func (s *Source) partitionList() []*partition {
	s.mu.Lock()
	defer s.mu.Unlock()
	parts := make([]*partition, 0, len(s.partitions))
	for _, p := range s.partitions {
		parts = append(parts, p)
	}
	return parts
}

// Stats returns a snapshot of every partition.
func (s *Source) Stats() Stats {
	st := Stats{Hub: s.hub, Namespace: s.namespace, Ready: s.Ready()}
	now := time.Now()
	quiet := s.failureQuiet()
	for _, p := range s.partitionList() {
		p.mu.Lock()
		ps := PartitionStats{
			ID:                   p.id,
			Owned:                p.session != nil,
			LastEnqueuedSequence: p.lastEnqSeq,
			LastEnqueuedTime:     p.lastEnqTime,
			ReceivedSequence:     p.receivedSeq,
			ProcessedSequence:    p.processed,
			CheckpointSequence:   p.checkpoint,
			Lag:                  -1,
			EventsPerSecond:      p.rate,
			LastCheckpoint:       p.lastCkpt,
			Received:             p.received,
			LagStale:             p.session != nil && p.lagStaleLocked(now, 2*s.cfg.StatsInterval),
		}
		ps.Error, ps.FailingSince, _ = p.failureLocked(now, quiet)
		p.mu.Unlock()
		if ps.LastEnqueuedSequence >= 0 && ps.ProcessedSequence >= 0 {
			ps.Lag = ps.LastEnqueuedSequence - ps.ProcessedSequence
		}
		if !ps.LastCheckpoint.IsZero() {
			ps.CheckpointAge = now.Sub(ps.LastCheckpoint)
		}
		st.Partitions = append(st.Partitions, ps)
	}
	slices.SortFunc(st.Partitions, func(a, b PartitionStats) int { return comparePartitionIDs(a.ID, b.ID) })
	return st
}

// comparePartitionIDs orders partition ids as numbers when both are.
func comparePartitionIDs(a, b string) int {
	ai, aerr := strconv.Atoi(a)
	bi, berr := strconv.Atoi(b)
	if aerr == nil && berr == nil {
		return cmp.Compare(ai, bi)
	}
	return cmp.Compare(a, b)
}

// lagStaleLocked reports whether the last enqueued sequence number, and so
// the lag, was last read from the hub more than maxAge ago, counting from
// the start of the current ownership at the earliest.
func (p *partition) lagStaleLocked(now time.Time, maxAge time.Duration) bool {
	ref := p.lastEnqAt
	if p.ownedAt.After(ref) {
		ref = p.ownedAt
	}
	return now.Sub(ref) > maxAge
}

// statsLoop refreshes the owned partitions' last enqueued sequence numbers
// and the receive rates every stats_interval.
func (s *Source) statsLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.refreshStats(ctx)
	}
}

func (s *Source) refreshStats(ctx context.Context) {
	var owned []*partition
	for _, p := range s.partitionList() {
		now := time.Now()
		p.mu.Lock()
		if el := now.Sub(p.rateAt).Seconds(); el > 0 {
			p.rate = float64(p.received-p.rateMark) / el
		}
		p.rateMark, p.rateAt = p.received, now
		if p.session != nil {
			owned = append(owned, p)
		}
		p.mu.Unlock()
	}
	for _, p := range owned {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.StatsInterval)
		props, err := s.consumer.GetPartitionProperties(cctx, p.id, nil)
		cancel()
		if err != nil {
			// Stats are best effort: the lags are stale until a later round
			// works, and the receive path reports real trouble.
			s.log.Debug("event hubs partition properties", "partition", p.id, "error", secret.RedactError(err))
			s.repairManagementLink(ctx)
			return
		}
		p.mu.Lock()
		p.lastEnqSeq, p.lastEnqTime, p.lastEnqAt = props.LastEnqueuedSequenceNumber, props.LastEnqueuedOn, time.Now()
		p.mu.Unlock()
	}
}

// repairManagementLink makes the SDK replace a dead management link. Once
// its connection was lost, GetPartitionProperties (SDK v2.0.2) fails for
// good: it hides the link's error from the SDK's recovery, so the dead
// link stays cached. GetEventHubProperties shares the link and does not
// hide the error, so one failed call of it lets the SDK drop the link and
// open a new one on the next call.
func (s *Source) repairManagementLink(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.StatsInterval)
	defer cancel()
	if _, err := s.consumer.GetEventHubProperties(cctx, nil); err != nil {
		s.log.Debug("event hubs properties", "error", secret.RedactError(err))
	}
}
