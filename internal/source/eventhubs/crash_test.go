package eventhubs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// TestHelperInstance is not a test: run by TestKilledInstancePartitionsMove
// as a separate process, it reads and acknowledges until it is killed.
func TestHelperInstance(t *testing.T) {
	if os.Getenv("SSPR_EVENTHUBS_HELPER") != "1" {
		t.Skip("helper process for TestKilledInstancePartitionsMove")
	}
	cfg := DefaultConfig()
	cfg.ConnectionString = secret.New(os.Getenv("SSPR_EVENTHUBS_CS"))
	cfg.EventHub = os.Getenv("SSPR_EVENTHUBS_HUB")
	cfg.ReceiveWait = 200 * time.Millisecond
	cfg.UpdateInterval = 500 * time.Millisecond
	cfg.PartitionExpiration = 3 * time.Second
	cfg.CheckpointStore.ConnectionString = secret.New(os.Getenv("SSPR_EVENTHUBS_STORAGE_CS"))
	cfg.CheckpointStore.Container = "checkpoints"
	src, err := New(cfg, testLogger(t).With("instance", "helper"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := src.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		b, err := src.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = b.Ack(ctx, nil)
	}
}

func TestKilledInstancePartitionsMove(t *testing.T) {
	const partitions = 4
	env := newEnv(t, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	helper := exec.Command(os.Args[0], "-test.run=^TestHelperInstance$")
	helper.Env = append(os.Environ(),
		"SSPR_EVENTHUBS_HELPER=1",
		"SSPR_EVENTHUBS_CS="+env.emu.ConnectionString(),
		"SSPR_EVENTHUBS_HUB="+env.emu.Hub,
		"SSPR_EVENTHUBS_STORAGE_CS="+env.az.ConnectionString())
	helper.Stdout, helper.Stderr = os.Stderr, os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = helper.Process.Kill()
			_ = helper.Wait()
		}
	})

	// The helper alone reads everything and checkpoints it.
	next := map[string]int{}
	env.publishRound(t, next, partitions, 3)
	for p := range partitions {
		env.waitCheckpoint(t, ctx, strconv.Itoa(p), 2)
	}

	// A second instance joins and takes part of the partitions.
	b := open(t, env.config(), "b")
	col := newCollector()
	done := col.run(ctx, t, "b", b)
	deadline := time.Now().Add(60 * time.Second)
	for owned(b) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("b never claimed a partition")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	t.Logf("before the kill b owns %d partitions", owned(b))

	// kill -9: no relinquishing; its partitions expire and move to b.
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	killed = true
	cps := env.checkpoints(t, ctx)
	env.publishRound(t, next, partitions, 4)

	// Everything after the checkpoints at the kill reaches b.
	var want []string
	for p := range partitions {
		id := strconv.Itoa(p)
		from := int64(-1)
		if c, ok := cps[id]; ok && c.SequenceNumber != nil {
			from = *c.SequenceNumber
		}
		for seq := from + 1; seq < int64(next[id]); seq++ {
			want = append(want, fmt.Sprintf("p%s-%d", id, seq))
		}
	}
	col.waitAll(t, ctx, want)
	if got := owned(b); got != partitions {
		t.Fatalf("b owns %d partitions after the kill", got)
	}
	for p := range partitions {
		id := strconv.Itoa(p)
		env.waitCheckpoint(t, ctx, id, int64(next[id]-1))
	}
	cancel()
	<-done
}
