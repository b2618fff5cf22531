package kafka

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	kgo "github.com/segmentio/kafka-go"
)

// Stats is a snapshot of the source for operators.
type Stats struct {
	Group  string
	Topics []string
	Ready  error
	// Generation is the group generation last joined; 0 before any.
	Generation int32
	// Partitions lists every partition this instance has owned since it
	// started, by topic and id.
	Partitions []PartitionStats
}

// PartitionStats describes one partition as this instance sees it. Offsets
// are -1 while unknown.
type PartitionStats struct {
	Topic     string
	Partition int
	Owned     bool // this instance reads it now
	// HighWatermark is the partition's end offset (the offset the next
	// produced message gets), from the last fetch or the last refresh
	// (every stats_interval while owned).
	HighWatermark  int64
	ReceivedOffset int64 // last message handed out in a batch
	// ProcessedOffset is the last message of an acknowledged batch.
	ProcessedOffset int64
	// CommittedOffset is the last offset this instance committed: the
	// offset of the next message to read.
	CommittedOffset int64
	// Lag is HighWatermark minus the next offset to process (the last
	// acknowledged offset + 1, or the committed offset the partition was
	// resumed from): messages not yet processed; -1 while unknown.
	Lag int64
	// MessagesPerSecond is the receive rate over the last stats_interval.
	MessagesPerSecond float64
	Received          int64 // messages handed out since start
	Redelivered       int64 // times a batch was not delivered and is read again
	CommitErrors      int64 // commits refused or failed (covered by later ones)
	LastCommit        time.Time
	// CommitAge is the time since LastCommit; zero when none.
	CommitAge time.Duration
	// ReadError is the last read failure, cleared by the next success.
	ReadError error
}

// partition holds one partition's state across the generations that own it.
type partition struct {
	topic string
	id    int
	// slot holds a token while a batch of the partition is out or being
	// read, so that batches of a partition are strictly one after another,
	// also across generations.
	slot chan struct{}

	mu           sync.Mutex
	session      *session
	hwm          int64
	received     int64
	processed    int64
	next         int64 // next offset to process, -1 while unknown
	committed    int64
	lastCommit   time.Time
	count        int64
	redelivered  int64
	commitErrors int64
	fetchErr     error
	rateMark     int64
	rateAt       time.Time
	rate         float64
}

func (s *Source) partition(topic string, id int) *partition {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := topicPartition{topic, id}
	p := s.partitions[k]
	if p == nil {
		p = &partition{topic: topic, id: id, slot: make(chan struct{}, 1),
			hwm: -1, received: -1, processed: -1, next: -1, committed: -1, rateAt: time.Now()}
		s.partitions[k] = p
	}
	return p
}

func (s *Source) partitionsLocked() []*partition {
	parts := make([]*partition, 0, len(s.partitions))
	for _, p := range s.partitions {
		parts = append(parts, p)
	}
	return parts
}

// begin records a new ownership that resumes at offset (negative when
// the group has no commit and start_offset decides).
func (p *partition) begin(sess *session, offset int64) {
	p.mu.Lock()
	p.session = sess
	p.next = -1
	if offset >= 0 {
		p.next = offset
	}
	p.mu.Unlock()
}

func (p *partition) end(sess *session) {
	p.mu.Lock()
	if p.session == sess {
		p.session = nil
	}
	p.fetchErr = nil
	p.mu.Unlock()
}

func (p *partition) onReceived(n int, last, hwm int64) {
	p.mu.Lock()
	p.count += int64(n)
	p.received = last
	p.hwm = max(p.hwm, hwm)
	p.fetchErr = nil
	p.mu.Unlock()
}

func (p *partition) onFetchError(err error) {
	p.mu.Lock()
	p.fetchErr = err
	p.mu.Unlock()
}

func (p *partition) onRewind() {
	p.mu.Lock()
	p.redelivered++
	p.mu.Unlock()
}

func (p *partition) onProcessed(off int64) {
	p.mu.Lock()
	p.processed = max(p.processed, off)
	p.next = off + 1
	p.mu.Unlock()
}

func (p *partition) onCommitted(next int64, at time.Time) {
	p.mu.Lock()
	p.committed = next
	p.lastCommit = at
	p.mu.Unlock()
}

func (p *partition) onCommitError() {
	p.mu.Lock()
	p.commitErrors++
	p.mu.Unlock()
}

// Stats returns a snapshot of every partition this instance has owned.
func (s *Source) Stats() Stats {
	st := Stats{Group: s.cfg.GroupID, Topics: slices.Clone(s.cfg.Topics), Ready: s.Ready()}
	s.mu.Lock()
	st.Generation = s.generation
	parts := s.partitionsLocked()
	s.mu.Unlock()
	now := time.Now()
	for _, p := range parts {
		p.mu.Lock()
		next := p.next
		ps := PartitionStats{
			Topic:             p.topic,
			Partition:         p.id,
			Owned:             p.session != nil,
			HighWatermark:     p.hwm,
			ReceivedOffset:    p.received,
			ProcessedOffset:   p.processed,
			CommittedOffset:   p.committed,
			Lag:               -1,
			MessagesPerSecond: p.rate,
			Received:          p.count,
			Redelivered:       p.redelivered,
			CommitErrors:      p.commitErrors,
			LastCommit:        p.lastCommit,
			ReadError:         p.fetchErr,
		}
		p.mu.Unlock()
		if ps.HighWatermark >= 0 && next >= 0 {
			ps.Lag = max(0, ps.HighWatermark-next)
		}
		if !ps.LastCommit.IsZero() {
			ps.CommitAge = now.Sub(ps.LastCommit)
		}
		st.Partitions = append(st.Partitions, ps)
	}
	slices.SortFunc(st.Partitions, func(a, b PartitionStats) int {
		if c := cmp.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return cmp.Compare(a.Partition, b.Partition)
	})
	return st
}

// statsLoop refreshes the receive rates and the owned partitions' high
// watermarks every stats_interval.
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
		s.mu.Lock()
		parts := s.partitionsLocked()
		s.mu.Unlock()
		now := time.Now()
		owned := map[string][]kgo.OffsetRequest{}
		byKey := map[topicPartition]*partition{}
		for _, p := range parts {
			p.mu.Lock()
			if el := now.Sub(p.rateAt).Seconds(); el > 0 {
				p.rate = float64(p.count-p.rateMark) / el
			}
			p.rateMark, p.rateAt = p.count, now
			if p.session != nil {
				owned[p.topic] = append(owned[p.topic], kgo.LastOffsetOf(p.id))
				byKey[topicPartition{p.topic, p.id}] = p
			}
			p.mu.Unlock()
		}
		if len(owned) > 0 {
			s.refreshWatermarks(ctx, owned, byKey)
		}
	}
}

// refreshWatermarks reads the end offsets of the owned partitions, so that
// the lag also grows while a partition waits for slow acknowledgements.
func (s *Source) refreshWatermarks(ctx context.Context, req map[string][]kgo.OffsetRequest, parts map[topicPartition]*partition) {
	lctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	res, err := s.meta.ListOffsets(lctx, &kgo.ListOffsetsRequest{Topics: req})
	if err != nil {
		// Best effort; the read path reports real trouble.
		s.log.Debug("kafka list offsets", "error", err)
		return
	}
	for topic, offs := range res.Topics {
		for _, o := range offs {
			p := parts[topicPartition{topic, o.Partition}]
			if p == nil || o.Error != nil || o.LastOffset < 0 {
				continue
			}
			p.mu.Lock()
			p.hwm = max(p.hwm, o.LastOffset)
			p.mu.Unlock()
		}
	}
}
