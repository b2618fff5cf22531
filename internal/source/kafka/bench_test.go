package kafka

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkConsume measures how fast the source hands out (and commits)
// messages of about 1 KiB, the size of an Entra audit record, from a real
// broker: four partitions, one source, batches acknowledged at once.
// Run it with a fixed count, e.g. -benchtime=20000x: each run produces
// b.N messages first.
func BenchmarkConsume(b *testing.B) {
	br := broker(b)
	topic := createTopic(b, br, 4)
	pad := strings.Repeat("x", 1024-60)
	const parts = 4
	for p := range parts {
		n := b.N / parts
		if p < b.N%parts {
			n++
		}
		vals := make([]string, n)
		for i := range vals {
			vals[i] = fmt.Sprintf(`{"id":"%d-%08d","pad":"%s"}`, p, i, pad)
		}
		produce(b, br, topic, p, vals...)
	}
	cfg := testConfig(br, uniqueName(b, "group"), topic)
	cfg.Batch.MaxMessages = 500
	cfg.Batch.MaxWait = 50 * time.Millisecond
	logger, _ := testLogger(b)
	s, err := New(cfg, logger)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			b.Error(err)
		}
	}()
	waitFor(b, time.Minute, "the group join", func() bool { return s.Ready() == nil })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b.ResetTimer()
	var bytes int64
	got := 0
	for got < b.N {
		batch, err := s.Read(ctx)
		if err != nil {
			b.Fatalf("read after %d of %d: %v", got, b.N, err)
		}
		for _, body := range batch.Bodies {
			bytes += int64(len(body.Data))
		}
		got += len(batch.Bodies)
		if err := batch.Ack(ctx, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(got)/sec, "msgs/s")
	b.ReportMetric(float64(bytes)/sec/1e6, "MB/s")
}
