package kafka

import (
	"cmp"
	"context"
	"slices"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/source/partitioned"
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

// Stats returns a snapshot of every partition this instance has owned.
func (s *Source) Stats() Stats {
	st := Stats{Group: s.cfg.GroupID, Topics: slices.Clone(s.cfg.Topics), Ready: s.Ready()}
	s.mu.Lock()
	st.Generation = s.generation
	s.mu.Unlock()
	now := time.Now()
	for _, p := range s.parts.Partitions() {
		ps := p.State(now, 2*s.cfg.StatsInterval, 0)
		out := PartitionStats{
			Topic:             ps.Key.topic,
			Partition:         ps.Key.id,
			Owned:             ps.Owned,
			HighWatermark:     ps.End,
			ReceivedOffset:    ps.Received,
			ProcessedOffset:   ps.Processed,
			CommittedOffset:   -1,
			Lag:               -1,
			MessagesPerSecond: ps.Rate,
			Received:          ps.Count,
			Redelivered:       ps.Redelivered,
			CommitErrors:      ps.CommitErrors,
			LastCommit:        ps.CommittedAt,
			CommitAge:         ps.CommitAge,
			ReadError:         ps.Err,
		}
		if ps.Committed >= 0 {
			out.CommittedOffset = ps.Committed + 1 // Kafka commits the next offset to read
		}
		if ps.End >= 0 && ps.Next >= 0 {
			out.Lag = max(0, ps.End-ps.Next)
		}
		st.Partitions = append(st.Partitions, out)
	}
	slices.SortFunc(st.Partitions, func(a, b PartitionStats) int {
		if c := cmp.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return cmp.Compare(a.Partition, b.Partition)
	})
	return st
}

// refreshWatermarks reads the end offsets of the owned partitions, so that
// the lag also grows while a partition waits for slow acknowledgements.
func (s *Source) refreshWatermarks(ctx context.Context, owned []*partitioned.Partition[topicPartition]) {
	if len(owned) == 0 {
		return
	}
	req := map[string][]kgo.OffsetRequest{}
	byKey := map[topicPartition]*partitioned.Partition[topicPartition]{}
	for _, p := range owned {
		tp := p.Key()
		req[tp.topic] = append(req[tp.topic], kgo.LastOffsetOf(tp.id))
		byKey[tp] = p
	}
	lctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	res, err := s.meta.ListOffsets(lctx, &kgo.ListOffsetsRequest{Topics: req})
	if err != nil {
		// Best effort; the read path reports real trouble.
		s.log.Debug("kafka list offsets", "error", err)
		return
	}
	now := time.Now()
	for topic, offs := range res.Topics {
		for _, o := range offs {
			p := byKey[topicPartition{topic, o.Partition}]
			if p == nil || o.Error != nil || o.LastOffset < 0 {
				continue
			}
			p.SetEnd(o.LastOffset, time.Time{}, now)
		}
	}
}
