package telemetry

import (
	"log/slog"
	"strconv"

	"github.com/sspr-exporter/sspr-exporter/internal/pipeline"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/elasticsearch"
	"github.com/sspr-exporter/sspr-exporter/internal/source/eventhubs"
	kafkasource "github.com/sspr-exporter/sspr-exporter/internal/source/kafka"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/health"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/metrics"
)

// Telemetry is the metrics, the readiness checker and the server of one
// exporter, connected: the checker's stall rule follows the metrics'
// progress and partition lag, and its state is exported as metrics.
type Telemetry struct {
	Metrics *metrics.Metrics
	Health  *health.Checker
	Server  *Server
}

// New builds the telemetry of an exporter. redactor (may be nil) cleans
// readiness reasons of registered secret values; pass the log handler's.
// Nothing listens before Server.Start.
func New(cfg Config, logger *slog.Logger, redactor *secret.Redactor, opts ...metrics.Option) *Telemetry {
	m := metrics.New(opts...)
	hc := health.New(cfg.ReadyStallTimeout, health.WithRedactor(redactor.Redact))
	hc.WatchProgress(m.LastProgress, m.TotalLag)
	m.Registry().MustRegister(hc)
	return &Telemetry{Metrics: m, Health: hc, Server: NewServer(cfg, logger, m.Gatherer(), hc)}
}

// BatchCounts converts one batch's pipeline counts for
// metrics.Recorder.BatchDone.
func BatchCounts(c pipeline.Counts) metrics.Counts {
	return metrics.Counts{
		Records: c.Records, SSPR: c.SSPR, Dropped: c.Dropped, Unsupported: c.Unsupported,
		ByAction: c.ByAction, ByOutcome: c.ByOutcome,
	}
}

// ElasticsearchStats adapts an Elasticsearch sink's counters for
// metrics.Metrics.SinkStatsFrom.
func ElasticsearchStats(s interface{ Stats() elasticsearch.Stats }) func() metrics.SinkStats {
	return func() metrics.SinkStats {
		st := s.Stats()
		return metrics.SinkStats{Retries: st.Retried, Duplicates: st.Duplicates, Requests: st.BulkRequests, HeldBytes: st.HeldBytes, PastRetention: st.PastRetention}
	}
}

// EventHubsPartitions adapts an Event Hubs source's stats for
// metrics.Metrics.WatchPartitions.
func EventHubsPartitions(s interface{ Stats() eventhubs.Stats }) func() []metrics.PartitionStats {
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

// KafkaPartitions adapts a Kafka source's stats for
// metrics.Metrics.WatchPartitions; the commit age is the checkpoint age.
func KafkaPartitions(s interface{ Stats() kafkasource.Stats }) func() []metrics.PartitionStats {
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
