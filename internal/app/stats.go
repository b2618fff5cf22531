package app

import (
	"strconv"

	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
	"github.com/sspr-exporter/sspr-exporter/internal/source/eventhubs"
	kafkasource "github.com/sspr-exporter/sspr-exporter/internal/source/kafka"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/metrics"
)

// register makes a component visible in the telemetry: its readiness as
// kind.name ("sink.elasticsearch"), and the counters of the components
// that keep their own, adapted here to the metrics. A component with stats
// of a new kind adds its case.
func register(tel *telemetry.Telemetry, kind, name string, c any) {
	tel.Health.AddIfReadiness(kind+"."+name, c)
	switch s := c.(type) {
	case interface{ Stats() bulk.Stats }:
		tel.Metrics.SinkStatsFrom(name, bulkStats(s))
	case interface{ Stats() eventhubs.Stats }:
		tel.Metrics.WatchPartitions(name, eventHubsPartitions(s))
	case interface{ Stats() kafkasource.Stats }:
		tel.Metrics.WatchPartitions(name, kafkaPartitions(s))
	}
}

// bulkStats adapts the counters of the search-engine sinks (Elasticsearch,
// OpenSearch: one bulk core) for metrics.Metrics.SinkStatsFrom.
func bulkStats(s interface{ Stats() bulk.Stats }) func() metrics.SinkStats {
	return func() metrics.SinkStats {
		st := s.Stats()
		return metrics.SinkStats{Retries: st.Retried, Duplicates: st.Duplicates, Requests: st.BulkRequests, HeldBytes: st.HeldBytes, PastRetention: st.PastRetention}
	}
}

// eventHubsPartitions adapts an Event Hubs source's stats for
// metrics.Metrics.WatchPartitions.
func eventHubsPartitions(s interface{ Stats() eventhubs.Stats }) func() []metrics.PartitionStats {
	return func() []metrics.PartitionStats {
		st := s.Stats()
		out := make([]metrics.PartitionStats, 0, len(st.Partitions))
		for _, p := range st.Partitions {
			out = append(out, metrics.PartitionStats{
				Topic: st.Hub, ID: p.ID, Owned: p.Owned, Lag: p.Lag, LagStale: p.LagStale, CheckpointAge: p.CheckpointAge,
			})
		}
		return out
	}
}

// kafkaPartitions adapts a Kafka source's stats for
// metrics.Metrics.WatchPartitions; the commit age is the checkpoint age.
func kafkaPartitions(s interface{ Stats() kafkasource.Stats }) func() []metrics.PartitionStats {
	return func() []metrics.PartitionStats {
		st := s.Stats()
		out := make([]metrics.PartitionStats, 0, len(st.Partitions))
		for _, p := range st.Partitions {
			out = append(out, metrics.PartitionStats{
				Topic: p.Topic, ID: strconv.Itoa(p.Partition), Owned: p.Owned, Lag: p.Lag, CheckpointAge: p.CommitAge,
			})
		}
		return out
	}
}
