package eventhubs

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"sync"
	"time"
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
	lastEnqSeq  int64
	lastEnqTime time.Time
	receivedSeq int64
	processed   int64
	checkpoint  int64
	lastCkpt    time.Time
	received    int64
	rateMark    int64
	rateAt      time.Time
	rate        float64
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
	p.session = sess
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

// Stats returns a snapshot of every partition.
func (s *Source) Stats() Stats {
	st := Stats{Hub: s.hub, Namespace: s.namespace, Ready: s.Ready()}
	s.mu.Lock()
	parts := make([]*partition, 0, len(s.partitions))
	for _, p := range s.partitions {
		parts = append(parts, p)
	}
	s.mu.Unlock()
	now := time.Now()
	for _, p := range parts {
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
		}
		p.mu.Unlock()
		if ps.LastEnqueuedSequence >= 0 && ps.ProcessedSequence >= 0 {
			ps.Lag = ps.LastEnqueuedSequence - ps.ProcessedSequence
		}
		if !ps.LastCheckpoint.IsZero() {
			ps.CheckpointAge = now.Sub(ps.LastCheckpoint)
		}
		st.Partitions = append(st.Partitions, ps)
	}
	slices.SortFunc(st.Partitions, func(a, b PartitionStats) int {
		ai, aerr := strconv.Atoi(a.ID)
		bi, berr := strconv.Atoi(b.ID)
		if aerr == nil && berr == nil {
			return cmp.Compare(ai, bi)
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return st
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
	s.mu.Lock()
	parts := make([]*partition, 0, len(s.partitions))
	for _, p := range s.partitions {
		parts = append(parts, p)
	}
	s.mu.Unlock()
	for _, p := range parts {
		now := time.Now()
		p.mu.Lock()
		owned := p.session != nil
		if el := now.Sub(p.rateAt).Seconds(); el > 0 {
			p.rate = float64(p.received-p.rateMark) / el
		}
		p.rateMark, p.rateAt = p.received, now
		p.mu.Unlock()
		if !owned {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, s.cfg.StatsInterval)
		props, err := s.consumer.GetPartitionProperties(cctx, p.id, nil)
		cancel()
		if err != nil {
			// Stats are best effort; the receive path reports real trouble.
			s.log.Debug("event hubs partition properties", "partition", p.id, "error", err)
			continue
		}
		p.mu.Lock()
		p.lastEnqSeq, p.lastEnqTime = props.LastEnqueuedSequenceNumber, props.LastEnqueuedOn
		p.mu.Unlock()
	}
}
