package elasticsearch

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/testserver/esdouble"
)

// BenchmarkWrite measures Write end to end against the double, which
// answers 201 without storing (its own parsing shares the CPU). One op is a
// Write of 1000 documents.
func BenchmarkWrite(b *testing.B) {
	d := esdouble.New()
	defer d.Close()
	d.SetFastAccept(true)
	cfg := testConfig(d)
	s := newSink(b, cfg, nil)
	docs := events("bench", 1000, nov)
	size := 0
	for i := range docs {
		j, _ := json.Marshal(&docs[i])
		size += len(j) + 60
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := s.Write(context.Background(), docs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(docs)*b.N)/b.Elapsed().Seconds(), "docs/s")
}
