package eventhubs

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/azurite"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/eventhubsemu"
)

// BenchmarkReadAck measures Read plus Ack (with its blob checkpoint) of 1 KiB
// events from one partition of the emulator, 100 events a batch.
func BenchmarkReadAck(b *testing.B) {
	emu := eventhubsemu.Start(b, eventhubsemu.Options{Hub: "audit", Partitions: 1})
	az := azurite.Start(b)
	body := bytes.Repeat([]byte("x"), 1024)
	for published := 0; published < b.N; {
		n := min(b.N-published, 500)
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = body
		}
		if n == 1 {
			bodies = append(bodies, body) // the control port takes one body or a batch
		}
		if _, err := emu.Publish("0", bodies...); err != nil {
			b.Fatal(err)
		}
		published += len(bodies)
	}
	cfg := DefaultConfig()
	cfg.ConnectionString = secret.New(emu.ConnectionString())
	cfg.EventHub = emu.Hub
	cfg.ReceiveWait = 200 * time.Millisecond
	cfg.CheckpointStore.ConnectionString = secret.New(az.ConnectionString())
	cfg.CheckpointStore.Container = "checkpoints"
	src, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	defer func() { _ = src.Close(ctx) }()
	if err := src.Start(ctx); err != nil {
		b.Fatal(err)
	}

	// The first batch waits for the partition to be claimed: not timed.
	first, err := src.Read(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := first.Ack(ctx, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	batches, timed := 0, 0
	for got := len(first.Bodies); got < b.N; {
		batch, err := src.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		got += len(batch.Bodies)
		timed += len(batch.Bodies)
		batches++
		if err := batch.Ack(ctx, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if batches > 0 {
		b.ReportMetric(float64(timed)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(timed)/float64(batches), "events/batch")
	}
}
