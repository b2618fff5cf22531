package eventhubs

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/azurite"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/eventhubsemu"
)

// logCapture is a JSON logger whose records a test reads back.
type logCapture struct{ buf syncbuf.Buffer }

func (l *logCapture) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(&l.buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// records returns every record logged so far with the given level and
// message (any level or message when empty).
func (l *logCapture) records(t *testing.T, level, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.buf.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if (level == "" || r["level"] == level) && (msg == "" || r["msg"] == msg) {
			out = append(out, r)
		}
	}
	return out
}

// poll calls cond every 100 ms until it returns "" or the deadline passes.
func poll(t *testing.T, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %s", what, timeout, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func partitionStats(src *Source, id string) PartitionStats {
	for _, p := range src.Stats().Partitions {
		if p.ID == id {
			return p
		}
	}
	return PartitionStats{ID: id}
}

// TestHubOutageSurfaces: with the hub refusing connections, every owned
// partition logs a warning with its cause, its lag is marked stale, and
// Ready reports the outage once it lasted unhealthy_after; when the hub is
// back, all of that clears by itself and reading goes on.
func TestHubOutageSurfaces(t *testing.T) {
	const partitions = 2
	env := newEnv(t, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := env.config()
	cfg.UnhealthyAfter = 2 * time.Second
	var logs logCapture
	src := start(t, cfg, logs.logger())
	col := newCollector()
	done := col.run(ctx, t, "a", src)
	next := map[string]int{}
	want := env.publishRound(t, next, partitions, 3)
	col.waitAll(t, ctx, want)
	fresh := func() string {
		for p := range partitions {
			ps := partitionStats(src, fmt.Sprint(p))
			if !ps.Owned || ps.Lag < 0 || ps.LagStale || ps.Error != "" {
				return fmt.Sprintf("partition %d: %+v", p, ps)
			}
		}
		if err := src.Ready(); err != nil {
			return err.Error()
		}
		return ""
	}
	poll(t, 30*time.Second, "partitions owned with a fresh lag", fresh)

	if err := env.emu.RefuseConnections(12 * time.Second); err != nil {
		t.Fatal(err)
	}
	refusedAt := time.Now()
	poll(t, 10*time.Second, "not ready during the outage", func() string {
		err := src.Ready()
		if err == nil {
			return "ready"
		}
		if !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "partition") {
			return "reason without the partition and the cause: " + err.Error()
		}
		return ""
	})
	if d := time.Since(refusedAt); d < cfg.UnhealthyAfter {
		t.Errorf("not ready %s into the outage, before unhealthy_after %s", d, cfg.UnhealthyAfter)
	}
	t.Logf("during the outage: %v", src.Ready())
	poll(t, 5*time.Second, "lag marked stale", func() string {
		for p := range partitions {
			ps := partitionStats(src, fmt.Sprint(p))
			if !ps.LagStale || !strings.Contains(ps.Error, "connection refused") {
				return fmt.Sprintf("partition %d: %+v", p, ps)
			}
		}
		return ""
	})
	warned := map[string]bool{}
	for _, r := range logs.records(t, "WARN", "") {
		if e, _ := r["error"].(string); strings.Contains(e, "connection refused") {
			p, _ := r["partition"].(string)
			warned[p] = true
		}
	}
	if len(warned) != partitions {
		t.Errorf("warnings naming a partition and the cause: %v, want one for each of %d partitions; log:\n%s", warned, partitions, logs.buf.String())
	}
	if strings.Contains(logs.buf.String(), "ZW11bGF0b3I=") {
		t.Error("the log holds the connection string's key")
	}

	// The hub comes back: ready again, fresh lags, and new events arrive.
	poll(t, 60*time.Second, "ready with fresh lags after the outage", fresh)
	want = append(want, env.publishRound(t, next, partitions, 2)...)
	col.waitAll(t, ctx, want)
	if n := len(logs.records(t, "INFO", "event hubs partition readable again")); n < partitions {
		t.Errorf("%d recovery lines, want one per partition", n)
	}
	cancel()
	<-done
}

// TestUnknownConsumerGroupUnready: a consumer group the hub does not have
// makes the source not ready, and the reason names the consumer group.
func TestUnknownConsumerGroupUnready(t *testing.T) {
	env := &testEnv{
		emu: eventhubsemu.Start(t, eventhubsemu.Options{Hub: "audit", Partitions: 2, ConsumerGroups: []string{"sspr-exporter"}}),
		az:  azurite.Start(t),
	}
	cfg := env.config()
	cfg.ConsumerGroup = "sspr-exporte" // a typo
	cfg.UnhealthyAfter = time.Second
	var logs logCapture
	src := start(t, cfg, logs.logger())
	poll(t, 30*time.Second, "not ready naming the consumer group", func() string {
		err := src.Ready()
		if err == nil || !strings.Contains(err.Error(), `consumer group "sspr-exporte"`) {
			return fmt.Sprint(err)
		}
		return ""
	})
	t.Logf("reason: %v", src.Ready())
	if len(logs.records(t, "WARN", "")) == 0 {
		t.Errorf("no warning logged; log:\n%s", logs.buf.String())
	}
}

// TestClaimLinesNameOwnerAndGroup: each claim is an info line of its own
// with the partition, the owner id and the consumer group, so that logs
// tell which instance holds which partition.
func TestClaimLinesNameOwnerAndGroup(t *testing.T) {
	env := newEnv(t, 2)
	var logs logCapture
	src := start(t, env.config(), logs.logger())
	owner := src.consumer.InstanceID()
	poll(t, 30*time.Second, "two claim lines", func() string {
		claims := logs.records(t, "INFO", "event hubs partition claimed")
		byPartition := map[any]map[string]any{}
		for _, r := range claims {
			byPartition[r["partition"]] = r
		}
		if len(byPartition) != 2 {
			return fmt.Sprintf("claim lines %v", claims)
		}
		for p, r := range byPartition {
			if r["owner"] != owner || r["consumer_group"] != "$Default" || r["hub"] != "audit" {
				return fmt.Sprintf("claim of partition %v: %v, want owner %s and consumer group $Default", p, r, owner)
			}
		}
		return ""
	})
	if err := src.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	released := map[any]bool{}
	for _, r := range logs.records(t, "INFO", "event hubs partition released") {
		if r["owner"] == owner && r["consumer_group"] == "$Default" {
			released[r["partition"]] = true
		}
	}
	if len(released) != 2 {
		t.Errorf("release lines with owner and consumer group for partitions %v, want both; log:\n%s", released, logs.buf.String())
	}
}
