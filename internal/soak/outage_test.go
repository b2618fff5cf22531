// Package soak holds long-running measurements that are not part of CI:
// they run only when asked for with SSPR_SOAK_OUTAGE.
package soak

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/gen"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/azurite"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/esdouble"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/eventhubsemu"
)

// TestSinkOutageRSS measures the exporter's memory through an Elasticsearch
// outage while its Event Hubs source is full: the sink is down for
// SSPR_SOAK_OUTAGE (e.g. "10m"), then back; every SSPR event must arrive
// once and the peak RSS is reported. Run:
//
//	SSPR_SOAK_OUTAGE=10m go test -run SinkOutageRSS -v -timeout 30m ./internal/soak
func TestSinkOutageRSS(t *testing.T) {
	outage, err := time.ParseDuration(os.Getenv("SSPR_SOAK_OUTAGE"))
	if err != nil || outage <= 0 {
		t.Skip("a measurement, not a test: set SSPR_SOAK_OUTAGE=10m to run it")
	}
	records := 400_000
	if n, err := strconv.Atoi(os.Getenv("SSPR_SOAK_RECORDS")); err == nil && n > 0 {
		records = n
	}

	bin := filepath.Join(t.TempDir(), "sspr-exporter")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/sspr-exporter")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	emu := eventhubsemu.Start(t, eventhubsemu.Options{Partitions: 4})
	store := azurite.Start(t)
	es := esdouble.New()
	defer es.Close()
	es.SetAutoCreate(true)

	// Fill the source before the exporter starts: bodies of 100 records,
	// round-robin over the partitions.
	var buf bytes.Buffer
	st, err := gen.Write(&buf, gen.Options{Records: records, PerBody: 100, SSPRShare: 0.02, Seed: 7}, true)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	i := 0
	for sc.Scan() {
		if _, err := emu.Publish(strconv.Itoa(i%4), bytes.Clone(sc.Bytes())); err != nil {
			t.Fatal(err)
		}
		i++
	}
	t.Logf("source holds %d bodies, %d records, %d SSPR events, %.0f MB", st.Bodies, st.Records, st.SSPR, float64(st.Bytes)/1e6)

	es.SetDown(true)
	cfg := filepath.Join(t.TempDir(), "soak.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
[input]
type = "eventhubs"
[input.eventhubs]
connection_string = %q
event_hub = %q
[input.eventhubs.checkpoint_store]
connection_string = %q
[output.file]
enabled = false
[output.elasticsearch]
enabled = true
skip_setup_check = true
addresses = [%q]
[output.elasticsearch.retry]
max_backoff = "5s"
[dead_letter]
path = %q
[log]
level = "warn"
[telemetry]
address = ""
`, emu.ConnectionString(), emu.Hub, store.ConnectionString(), es.URL(), filepath.Join(t.TempDir(), "dl.ndjson"))), 0o644)

	cmd := exec.Command(bin, "run", "--config", cfg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	peak := int64(0)
	sample := func() {
		if kb := rssKB(cmd.Process.Pid); kb > peak {
			peak = kb
		}
	}
	deadline := time.Now().Add(outage)
	for time.Now().Before(deadline) {
		sample()
		time.Sleep(time.Second)
	}
	t.Logf("after %s of outage: peak RSS %d MB, documents stored %d", outage, peak/1024, es.Count("entra-sspr-*"))
	es.SetDown(false)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	for es.Count("entra-sspr-*") < st.SSPR {
		if ctx.Err() != nil {
			t.Fatalf("only %d of %d documents stored after the outage; stderr:\n%s", es.Count("entra-sspr-*"), st.SSPR, tail(stderr.String()))
		}
		sample()
		time.Sleep(time.Second)
	}
	sample()
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	t.Logf("RESULT outage=%s records=%d sspr=%d stored=%d peak_rss=%dMB goos=%s", outage, st.Records, st.SSPR, es.Count("entra-sspr-*"), peak/1024, runtime.GOOS)
	if peak > 200*1024 {
		t.Errorf("peak RSS %d MB is over the 200 MB target", peak/1024)
	}
}

// rssKB reads VmHWM (peak resident set) of a process, in KiB.
func rssKB(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}
