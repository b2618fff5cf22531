package app

import (
	"context"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/sink/elasticsearch"
	"github.com/sspr-exporter/sspr-exporter/internal/source/eventhubs"
	kafkasource "github.com/sspr-exporter/sspr-exporter/internal/source/kafka"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/metrics"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/telemetrytest"
)

type fakeStats eventhubs.Stats

func (f fakeStats) Stats() eventhubs.Stats { return eventhubs.Stats(f) }

// TestEventHubsPartitionsLagStale: the adapter carries the source's stale
// flag to the metrics.
func TestEventHubsPartitionsLagStale(t *testing.T) {
	got := eventHubsPartitions(fakeStats{Hub: "audit", Partitions: []eventhubs.PartitionStats{
		{ID: "0", Owned: true, Lag: 3, LagStale: true, CheckpointAge: time.Minute, Error: "dial tcp: connection refused"},
		{ID: "1", Owned: true, Lag: 5},
	}})()
	want := []metrics.PartitionStats{
		{Topic: "audit", ID: "0", Owned: true, Lag: 3, LagStale: true, CheckpointAge: time.Minute},
		{Topic: "audit", ID: "1", Owned: true, Lag: 5},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("partition %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestEventHubsPartitionsAndStall: an Event Hubs source registered with
// the telemetry exports its partitions' lag and checkpoint age, and its
// lag feeds the stall rule.
func TestEventHubsPartitionsAndStall(t *testing.T) {
	st := fakeStats{Hub: "audit", Partitions: []eventhubs.PartitionStats{
		{ID: "0", Owned: true, Lag: 7, CheckpointAge: 11 * time.Minute},
		{ID: "1", Owned: true, Lag: -1},
		{ID: "2", Owned: false, Lag: 3},
	}}
	cfg := telemetry.DefaultConfig()
	cfg.Address = "127.0.0.1:0"
	tel := telemetry.New(cfg, nil, nil)
	register(tel, "source", "eventhubs", st)
	if err := tel.Server.Start(); err != nil {
		t.Fatal(err)
	}
	defer tel.Server.Shutdown(context.Background())
	mfs := telemetrytest.Scrape(t, tel.Server.Addr())
	if v := mfs.Value("sspr_exporter_source_partition_lag", map[string]string{"source": "eventhubs", "topic": "audit", "partition": "0"}); v != 7 {
		t.Errorf("lag of partition 0 = %v", v)
	}
	if v := mfs.Value("sspr_exporter_source_checkpoint_age_seconds", map[string]string{"partition": "0"}); v != 660 {
		t.Errorf("checkpoint age of partition 0 = %v", v)
	}
	if lag, ok := tel.Metrics.TotalLag(); !ok || lag != 7 {
		t.Errorf("TotalLag = %d %v", lag, ok)
	}
}

type fakeESStats elasticsearch.Stats

func (f fakeESStats) Stats() elasticsearch.Stats { return elasticsearch.Stats(f) }

func TestElasticsearchStats(t *testing.T) {
	got := bulkStats(fakeESStats{Created: 5, Duplicates: 2, Retried: 7, BulkRequests: 3, HeldBytes: 99})()
	want := metrics.SinkStats{Retries: 7, Duplicates: 2, Requests: 3, HeldBytes: 99}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

type fakeKafkaStats kafkasource.Stats

func (f fakeKafkaStats) Stats() kafkasource.Stats { return kafkasource.Stats(f) }

func TestKafkaPartitions(t *testing.T) {
	got := kafkaPartitions(fakeKafkaStats{Partitions: []kafkasource.PartitionStats{
		{Topic: "entra-audit", Partition: 2, Owned: true, Lag: 40, CommitAge: time.Minute},
	}})()
	want := []metrics.PartitionStats{{Topic: "entra-audit", ID: "2", Owned: true, Lag: 40, CheckpointAge: time.Minute}}
	if len(got) != 1 || got[0] != want[0] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
