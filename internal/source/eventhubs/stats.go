package eventhubs

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/source/partitioned"
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

// Stats returns a snapshot of every partition.
func (s *Source) Stats() Stats {
	st := Stats{Hub: s.hub, Namespace: s.namespace, Ready: s.Ready()}
	now := time.Now()
	quiet := s.failureQuiet()
	for _, p := range s.parts.Partitions() {
		ps := p.State(now, 2*s.cfg.StatsInterval, quiet)
		out := PartitionStats{
			ID:                   ps.Key,
			Owned:                ps.Owned,
			LastEnqueuedSequence: ps.End,
			LastEnqueuedTime:     ps.EndWritten,
			ReceivedSequence:     ps.Received,
			ProcessedSequence:    ps.Processed,
			CheckpointSequence:   ps.Committed,
			Lag:                  -1,
			LagStale:             ps.EndStale,
			FailingSince:         ps.FailingSince,
			EventsPerSecond:      ps.Rate,
			LastCheckpoint:       ps.CommittedAt,
			CheckpointAge:        ps.CommitAge,
			Received:             ps.Count,
		}
		if ps.Err != nil {
			out.Error = ps.Err.Error()
		}
		if ps.End >= 0 && ps.Processed >= 0 {
			out.Lag = ps.End - ps.Processed
		}
		st.Partitions = append(st.Partitions, out)
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

// refreshEnds reads the owned partitions' last enqueued sequence numbers.
func (s *Source) refreshEnds(ctx context.Context, owned []*partitioned.Partition[string]) {
	for _, p := range owned {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.StatsInterval)
		props, err := s.consumer.GetPartitionProperties(cctx, p.Key(), nil)
		cancel()
		if err != nil {
			// Stats are best effort: the lags are stale until a later round
			// works, and the receive path reports real trouble.
			s.log.Debug("event hubs partition properties", "partition", p.Key(), "error", secret.RedactError(err))
			s.repairManagementLink(ctx)
			return
		}
		p.SetEnd(props.LastEnqueuedSequenceNumber, props.LastEnqueuedOn, time.Now())
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
