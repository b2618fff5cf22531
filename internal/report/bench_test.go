package report_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/eventstore"
	"github.com/sspr-exporter/sspr-exporter/internal/report"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/searchnode"
)

// BenchmarkResetsReportES times the resets report over 10,000 and 100,000
// documents in a real Elasticsearch node (loaded once per size, before the
// timer starts), written as CSV. peak-heap-MB is the largest live heap
// seen while the reports ran: flat in the number of documents, since the
// reader holds one page and the report one row.
func BenchmarkResetsReportES(b *testing.B) {
	url := searchnode.Shared(b, searchnode.ES8).URL()
	round := 0
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("docs=%d", n), func(b *testing.B) {
			// The testing package calls this function again for a larger
			// b.N and for each -count: every call loads its own indices.
			round++
			docs := many(b, n)
			cfg := storeConfig(searchnode.ES8, url, fmt.Sprintf("rp-bench-%d-%d", n, round))
			load(b, searchnode.ES8, url, cfg, docs)
			store, err := eventstore.Open(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			q := eventstore.Query{From: docs[0].Time.Add(-time.Hour), To: docs[len(docs)-1].Time.Add(time.Hour)}
			spec := report.Spec{Name: "resets", Query: q, Format: "csv"}
			docs = nil
			runtime.GC()
			peak := watchHeap()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				m, err := report.Generate(context.Background(), store, spec, io.Discard, now)
				if err != nil {
					b.Fatal(err)
				}
				if m.Rows != n {
					b.Fatalf("%d rows, want %d", m.Rows, n)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(n), "rows/op")
		})
	}
}

// watchHeap samples the live heap until the returned func is called,
// which returns the largest value seen.
func watchHeap() func() uint64 {
	var (
		mu   sync.Mutex
		max  uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		if ms.HeapAlloc > max {
			max = ms.HeapAlloc
		}
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		sample()
		return max
	}
}
