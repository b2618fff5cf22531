package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkProduce measures end-to-end produce throughput (encode, send,
// acks=all) to the real broker on loopback with ~1.5 KB documents, written
// the way the pipeline does: one Write per batch, batches in sequence.
func BenchmarkProduce(b *testing.B) {
	for _, bc := range []struct {
		codec   string
		batch   int
		writers int
	}{{"none", 1000, 1}, {"lz4", 1000, 1}, {"none", 100, 1}, {"none", 1000, 2}, {"none", 100, 4}} {
		b.Run(fmt.Sprintf("codec=%s/batch=%d/writers=%d", bc.codec, bc.batch, bc.writers), func(b *testing.B) {
			br := broker(b)
			cfg := testConfig(b, br, 6)
			cfg.Compression = bc.codec
			setupTopic(b, cfg)
			s := newSink(b, cfg, nil)

			docs := makeDocs("bench", 5000)
			for i := range docs {
				// Pad to about 1.5 KB with the kind of detail real records carry.
				docs[i].Azure.AuditLogs.AdditionalDetails = map[string]string{
					"UserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
					"Detail":    strings.Repeat("z", 600),
				}
			}
			one, _ := json.Marshal(docs[0])
			size := len(one)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			if err := s.Write(ctx, docs[:bc.batch]); err != nil { // connections and metadata
				b.Fatal(err)
			}

			b.SetBytes(int64(size))
			b.ResetTimer()
			start := time.Now()
			// With writers > 1, Writes overlap as they would with a pipeline
			// that keeps several batches in flight.
			var wg sync.WaitGroup
			errs := make(chan error, bc.writers)
			var next atomic.Int64
			for range bc.writers {
				wg.Go(func() {
					for {
						i := int(next.Add(int64(bc.batch))) - bc.batch
						if i >= b.N {
							return
						}
						n := min(bc.batch, b.N-i)
						off := i % (len(docs) - bc.batch)
						if err := s.Write(ctx, docs[off:off+n]); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
			secs := time.Since(start).Seconds()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/secs, "msgs/s")
			b.ReportMetric(float64(b.N)*float64(size)/secs/1e6, "MB/s")
			b.ReportMetric(float64(size), "doc_bytes")
		})
	}
}
