package telemetry

import (
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/source/eventhubs"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/metrics"
)

// TestEventHubsPartitionsLagStale: the adapter carries the source's stale
// flag to the metrics.
func TestEventHubsPartitionsLagStale(t *testing.T) {
	got := EventHubsPartitions(fakeStats{Hub: "audit", Partitions: []eventhubs.PartitionStats{
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
