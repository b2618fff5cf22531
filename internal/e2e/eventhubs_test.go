package e2e

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/azurite"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/eventhubsemu"
)

// ehEnv is an Event Hubs emulator with four partitions and an Azurite
// checkpoint store.
type ehEnv struct {
	emu *eventhubsemu.Emulator
	az  *azurite.Server
	dir string
	led *ledger
}

func newEHEnv(t *testing.T) *ehEnv {
	t.Helper()
	return &ehEnv{
		emu: eventhubsemu.Start(t, eventhubsemu.Options{Hub: "audit", Partitions: 4}),
		az:  azurite.Start(t),
		dir: t.TempDir(),
		led: &ledger{},
	}
}

func (e *ehEnv) config(name string) exporterConfig {
	return exporterConfig{
		EventHubsConn: e.emu.ConnectionString(),
		Hub:           e.emu.Hub,
		StorageConn:   e.az.ConnectionString(),
		Container:     "checkpoints",
		FilePath:      filepath.Join(e.dir, name+".ndjson"),
		DeadLetter:    filepath.Join(e.dir, name+".deadletter.ndjson"),
	}
}

func (e *ehEnv) checkpoints(t testing.TB) map[string]checkpoint {
	return readCheckpoints(t, e.az.ConnectionString(), "checkpoints")
}

// lastSeqs is the last published sequence number of each partition.
func lastSeqs(bodies []published) map[string]int64 {
	out := map[string]int64{}
	for _, b := range bodies {
		if s, ok := out[b.partition]; !ok || b.seq > s {
			out[b.partition] = b.seq
		}
	}
	return out
}

// checkpointsAt returns "" once every partition's checkpoint is at its last
// published event.
func checkpointsAt(t testing.TB, e *ehEnv) func() string {
	return func() string {
		cps := e.checkpoints(t)
		for p, s := range lastSeqs(e.led.snapshot()) {
			if cps[p].seq != s {
				return fmt.Sprintf("partition %s checkpoint %+v, last event %d", p, cps[p], s)
			}
		}
		return ""
	}
}

// allDelivered returns "" once every published SSPR id is in the files.
func allDelivered(t testing.TB, led *ledger, p *proc, files ...string) func() string {
	return func() string {
		if p != nil && p.Exited() {
			t.Fatalf("%s exited by itself:\n%s", p.name, p.LogTail(4000))
		}
		want := led.ids()
		if m := readDocs(t, files...).missing(want); len(m) > 0 {
			return fmt.Sprintf("%d of %d SSPR ids missing, e.g. %s", len(m), len(want), firstN(m, 3))
		}
		return ""
	}
}

// TestEventHubsToFile: bodies published to the hub come out of the file
// sink as exactly the generator's SSPR events, once each, and the
// checkpoints end at the last event.
func TestEventHubsToFile(t *testing.T) {
	seed := testSeed(t)
	records := envInt(t, "SSPR_E2E_RECORDS", 5000)
	env := newEHEnv(t)
	bodies := genBodies(t, seed, records, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	half := len(bodies) / 2
	// Half is waiting when the exporter starts, half arrives while it runs.
	env.led.publishSpread(t, env.emu, bodies[:half])
	cfg := env.config("a")
	p := newProc(t, env.dir, "a", cfg.toml())
	p.Start(t)
	env.led.publishSpread(t, env.emu, bodies[half:])

	waitFor(t, 3*time.Minute, "every SSPR event in the file sink", allDelivered(t, env.led, p, cfg.FilePath), p)
	waitFor(t, time.Minute, "checkpoints at the last events", checkpointsAt(t, env), p)
	p.Stop(t)

	want := map[string]bool{}
	for _, id := range env.led.ids() {
		want[id] = true
	}
	ds := readDocs(t, cfg.FilePath)
	if len(want) == 0 {
		t.Fatal("the generator produced no SSPR events")
	}
	for id, n := range ds.count {
		if !want[id] {
			t.Errorf("document %s is not an SSPR event of the stream", id)
		}
		if n != 1 {
			t.Errorf("document %s written %d times without any fault", id, n)
		}
	}
	if len(ds.count) != len(want) {
		t.Errorf("%d distinct documents, want %d", len(ds.count), len(want))
	}
	if ds.torn > 0 || len(ds.bad) > 0 {
		t.Errorf("%d torn lines, %d documents without the required event fields (e.g. %v)", ds.torn, len(ds.bad), ds.bad[:min(1, len(ds.bad))])
	}
	if dl := readDeadLetters(t, cfg.DeadLetter); len(dl) > 0 {
		t.Errorf("%d dead letters from a clean stream, first: %+v", len(dl), dl[0])
	}
	t.Logf("%d bodies, %d records, %d SSPR events delivered", len(bodies), records, len(ds.count))
}

// TestTwoInstancesShareAndTakeOver: two instances split four partitions,
// both write output; after SIGTERM of one, the other takes its partitions
// over and nothing is lost.
func TestTwoInstancesShareAndTakeOver(t *testing.T) {
	seed := testSeed(t)
	records := envInt(t, "SSPR_E2E_RECORDS", 5000)
	env := newEHEnv(t)
	ca, cb := env.config("a"), env.config("b")
	a := newProc(t, env.dir, "a", ca.toml())
	b := newProc(t, env.dir, "b", cb.toml())
	a.Start(t)
	b.Start(t)

	waitFor(t, 90*time.Second, "two instances owning two partitions each", func() string {
		byOwner := map[string]int{}
		for _, o := range owners(t, env.az.ConnectionString(), "checkpoints") {
			if o != "" {
				byOwner[o]++
			}
		}
		if len(byOwner) != 2 {
			return fmt.Sprintf("partitions by owner: %v", byOwner)
		}
		for _, n := range byOwner {
			if n != 2 {
				return fmt.Sprintf("partitions by owner: %v", byOwner)
			}
		}
		return ""
	}, a, b)

	bodies := genBodies(t, seed, 2*records, time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))
	half := len(bodies) / 2
	env.led.publishSpread(t, env.emu, bodies[:half])
	waitFor(t, 3*time.Minute, "round 1 in the union of both outputs", allDelivered(t, env.led, nil, ca.FilePath, cb.FilePath), a, b)
	na, nb := len(readDocs(t, ca.FilePath).count), len(readDocs(t, cb.FilePath).count)
	if na == 0 || nb == 0 {
		t.Errorf("both instances should write output: a wrote %d documents, b %d", na, nb)
	}
	t.Logf("round 1: a wrote %d documents, b %d", na, nb)

	a.Stop(t)
	round1 := len(env.led.snapshot())
	env.led.publishSpread(t, env.emu, bodies[half:])
	waitFor(t, 3*time.Minute, "round 2 after a stopped", allDelivered(t, env.led, b, ca.FilePath, cb.FilePath), b)

	// a is gone: everything of round 2, on every partition, came from b.
	dsb := readDocs(t, cb.FilePath)
	parts := map[string]bool{}
	for _, pb := range env.led.snapshot()[round1:] {
		for _, id := range pb.ids {
			if dsb.count[id] == 0 {
				t.Errorf("id %s (partition %s, after a stopped) not written by b", id, pb.partition)
			}
		}
		parts[pb.partition] = true
	}
	if len(parts) != 4 {
		t.Errorf("round 2 covered partitions %v, want all four", parts)
	}
	waitFor(t, time.Minute, "checkpoints at the last events", checkpointsAt(t, env), b)
	b.Stop(t)
	t.Logf("b wrote %d documents in all", len(dsb.count))
}

// TestKillNineRounds: the exporter is killed with SIGKILL at random moments
// while a stream arrives, and restarted. After every kill, every body at or
// before its partition's checkpoint has all its SSPR events in the output;
// at the end every SSPR event was delivered at least once.
func TestKillNineRounds(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 3))
	records := envInt(t, "SSPR_E2E_KILL_RECORDS", 20000)
	rounds := envInt(t, "SSPR_E2E_KILL_ROUNDS", 3)
	env := newEHEnv(t)
	bodies := genBodies(t, seed, records, time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC))
	cfg := env.config("a")
	p := newProc(t, env.dir, "a", cfg.toml())

	// The stream arrives over about three seconds per round, one body per
	// partition at a time, so that kills land in the middle of it.
	chunks := (len(bodies) + 3) / 4
	interval := time.Duration(rounds) * 3 * time.Second / time.Duration(chunks)
	var pubWG sync.WaitGroup
	pubErr := make(chan error, 1)
	published := make(chan struct{})
	pubWG.Add(1)
	go func() {
		defer pubWG.Done()
		defer close(published)
		for i := 0; i < len(bodies); i++ {
			if err := env.led.publish(env.emu, strconv.Itoa(i%4), bodies[i]); err != nil {
				pubErr <- err
				return
			}
			if i%4 == 3 {
				time.Sleep(interval)
			}
		}
	}()
	t.Cleanup(pubWG.Wait)

	isPublished := func() bool {
		select {
		case <-published:
			return true
		default:
			return false
		}
	}
	for r := 1; r <= rounds; r++ {
		before := len(readDocs(t, cfg.FilePath).count)
		p.Start(t)
		waitFor(t, 90*time.Second, fmt.Sprintf("round %d: progress", r), func() string {
			if p.Exited() {
				t.Fatalf("exporter exited by itself:\n%s", p.LogTail(4000))
			}
			ds := readDocs(t, cfg.FilePath)
			if len(ds.count) > before || (isPublished() && len(ds.missing(env.led.ids())) == 0) {
				return ""
			}
			return fmt.Sprintf("still %d documents", len(ds.count))
		}, p)
		time.Sleep(randDuration(rng, 0, 1500*time.Millisecond))
		p.Kill()
		cps := env.checkpoints(t)
		ds := readDocs(t, cfg.FilePath)
		covered := checkCheckpointed(t, cps, env.led.snapshot(), ds)
		t.Logf("round %d: killed with %d documents written, %d published bodies at or before the checkpoints %v", r, len(ds.count), covered, cps)
		if t.Failed() {
			t.FailNow()
		}
	}
	select {
	case err := <-pubErr:
		t.Fatal(err)
	case <-published:
	}
	p.Start(t)
	waitFor(t, 3*time.Minute, "every SSPR event after the last restart", allDelivered(t, env.led, p, cfg.FilePath), p)
	waitFor(t, time.Minute, "checkpoints at the last events", checkpointsAt(t, env), p)
	p.Stop(t)

	ds := readDocs(t, cfg.FilePath)
	want := env.led.ids()
	checkCheckpointed(t, env.checkpoints(t), env.led.snapshot(), ds)
	dups := 0
	for _, id := range want {
		if ds.count[id] > 1 {
			dups += ds.count[id] - 1
		}
	}
	if len(ds.count) != len(want) {
		t.Errorf("%d distinct documents, want %d", len(ds.count), len(want))
	}
	if len(ds.bad) > 0 {
		t.Errorf("%d documents without the required event fields, e.g. %s", len(ds.bad), ds.bad[0])
	}
	if dl := readDeadLetters(t, cfg.DeadLetter); len(dl) > 0 {
		t.Errorf("%d dead letters from a clean stream, first: %+v", len(dl), dl[0])
	}
	t.Logf("%d rounds: %d SSPR events, all delivered; %d duplicate copies (replays after kill -9), %d torn lines", rounds, len(want), dups, ds.torn)
}

// poisonBodies are bodies no decoder can read, each with a marker.
func poisonBody(kind int, marker string) []byte {
	switch kind % 3 {
	case 0: // an upload cut short
		return []byte(`{"records":[{"time":"2026-11-01T00:00:00.0000000Z","category":"AuditLogs","operationName":"Reset password (self-service)","properties":{"id":"` + marker + `","activityDisplayName":"Reset password (self-service)","loggedBySer`)
	case 1: // not JSON at all
		return []byte("this is not json " + marker + " }{")
	default: // not UTF-8
		return append([]byte{0xff, 0xfe, 0x00, '{'}, []byte(marker+"\xc3\x28")...)
	}
}

// payloadOf returns a dead letter's payload.
func payloadOf(r deadletter.Record) string {
	if r.Raw != nil {
		return *r.Raw
	}
	b, _ := base64.StdEncoding.DecodeString(r.RawBase64)
	return string(b)
}

// findDeadLetter returns the first dead letter of the body at (partition,
// seq), or false.
func findDeadLetter(dls []deadletter.Record, hub string, b published) (deadletter.Record, bool) {
	for _, r := range dls {
		s := r.Source
		if s.Kind == "eventhubs" && s.Partition == b.partition && s.Sequence != nil && *s.Sequence == b.seq {
			return r, true
		}
	}
	return deadletter.Record{}, false
}

// checkPoisonDeadLettered checks that a poison body's dead letter names its
// hub, partition, offset and sequence number, with its payload.
func checkPoisonDeadLettered(t testing.TB, dls []deadletter.Record, hub string, b published, marker string) bool {
	t.Helper()
	r, ok := findDeadLetter(dls, hub, b)
	if !ok {
		return false
	}
	if r.Stage != deadletter.StageDecode || r.Source.Topic != hub || r.Source.Offset != b.offset {
		t.Errorf("dead letter of partition %s sequence %d: stage %q, source %+v; want stage decode, topic %s, offset %s", b.partition, b.seq, r.Stage, r.Source, hub, b.offset)
	}
	if marker != "" && !strings.Contains(payloadOf(r), marker) {
		t.Errorf("dead letter of partition %s sequence %d does not hold the body (%s): %q", b.partition, b.seq, marker, payloadOf(r))
	}
	return true
}

// TestCorruptBodyDeadLettered: corrupt bodies go to the dead letters with
// their position, and their partition keeps moving.
func TestCorruptBodyDeadLettered(t *testing.T) {
	seed := testSeed(t)
	env := newEHEnv(t)
	var good []body
	for _, b := range genBodies(t, seed, 3000, time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC)) {
		if len(b.ids) > 0 {
			good = append(good, b)
		}
	}
	if len(good) < 4 {
		t.Fatalf("only %d bodies with SSPR events", len(good))
	}
	cfg := env.config("a")
	p := newProc(t, env.dir, "a", cfg.toml())
	p.Start(t)

	var seq []body
	markers := map[int]string{}
	seq = append(seq, good[0])
	for k := range 3 {
		m := fmt.Sprintf("POISON-%d-%d", seed%1000, k)
		markers[len(seq)] = m
		seq = append(seq, body{data: poisonBody(k, m), poison: true})
		seq = append(seq, good[1+k])
	}
	for _, b := range seq {
		if err := env.led.publish(env.emu, "1", b); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 2*time.Minute, "good bodies around the corrupt ones delivered", allDelivered(t, env.led, p, cfg.FilePath), p)
	pub := env.led.snapshot()
	waitFor(t, time.Minute, "corrupt bodies dead-lettered", func() string {
		dls := readDeadLetters(t, cfg.DeadLetter)
		for i, b := range pub {
			if b.poison {
				if _, ok := findDeadLetter(dls, env.emu.Hub, b); !ok {
					return fmt.Sprintf("no dead letter for partition %s sequence %d (%s); %d dead letters", b.partition, b.seq, markers[i], len(dls))
				}
			}
		}
		return ""
	}, p)
	dls := readDeadLetters(t, cfg.DeadLetter)
	for i, b := range pub {
		if b.poison {
			checkPoisonDeadLettered(t, dls, env.emu.Hub, b, markers[i])
		}
	}
	// The partition moves on: its checkpoint reaches the last body.
	waitFor(t, time.Minute, "partition 1 checkpointed past the corrupt bodies", checkpointsAt(t, env), p)
	p.Stop(t)
	t.Logf("%d dead letters for 3 corrupt bodies", len(dls))
}

// TestStorageOutageRecovers: with the checkpoint store unreachable for a
// few seconds, the exporter keeps its checkpoints intact, recovers by
// itself, delivers later bodies and checkpoints again. Six seconds are
// mostly absorbed by the storage client's own retries.
func TestStorageOutageRecovers(t *testing.T) {
	storageOutage(t, 6*time.Second)
}

// TestStorageOutageLongerThanRetries: the same with an outage of 15
// seconds, longer than the storage client's retries: a checkpoint write
// then fails, and the exporter must still go on by itself (docs/eventhubs.md:
// "the input retries by itself").
func TestStorageOutageLongerThanRetries(t *testing.T) {
	storageOutage(t, 15*time.Second)
}

func storageOutage(t *testing.T, outage time.Duration) {
	outageRecovers(t, time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC), outage,
		func(env *ehEnv) error { return env.az.Stop() },
		func(env *ehEnv) error { return env.az.Start() })
}

// outageRecovers runs one fault through a running exporter: a third of the
// stream is delivered and checkpointed, then begin starts the fault; the
// second third is published during it and the last third after end (nil
// when the fault ends by itself) lifts it. Everything must be delivered,
// the checkpoints must reach the last events without ever going back, and
// every body they cover must be in the output.
func outageRecovers(t *testing.T, day time.Time, outage time.Duration, begin, end func(*ehEnv) error) {
	seed := testSeed(t)
	records := envInt(t, "SSPR_E2E_RECORDS", 5000)
	env := newEHEnv(t)
	bodies := genBodies(t, seed, records, day)
	third := len(bodies) / 3
	cfg := env.config("a")
	p := newProc(t, env.dir, "a", cfg.toml())
	p.Start(t)

	env.led.publishSpread(t, env.emu, bodies[:third])
	waitFor(t, 2*time.Minute, "first third delivered", allDelivered(t, env.led, p, cfg.FilePath), p)
	waitFor(t, time.Minute, "first third checkpointed", checkpointsAt(t, env), p)
	before := env.checkpoints(t)

	if err := begin(env); err != nil {
		t.Fatal(err)
	}
	env.led.publishSpread(t, env.emu, bodies[third:2*third])
	time.Sleep(outage)
	if end != nil {
		if err := end(env); err != nil {
			t.Fatal(err)
		}
	}
	env.led.publishSpread(t, env.emu, bodies[2*third:])

	waitFor(t, 3*time.Minute, "every body after the outage delivered", allDelivered(t, env.led, p, cfg.FilePath), p)
	waitFor(t, 2*time.Minute, "checkpoints at the last events", checkpointsAt(t, env), p)
	after := env.checkpoints(t)
	for part, cp := range before {
		if after[part].seq < cp.seq {
			t.Errorf("partition %s checkpoint went back from %d to %d", part, cp.seq, after[part].seq)
		}
	}
	checkCheckpointed(t, after, env.led.snapshot(), readDocs(t, cfg.FilePath))
	p.Stop(t)
	t.Logf("checkpoints before the outage %v, after %v; warnings and errors logged: %v", before, after, p.logProblems())
}

// TestFileSinkAfterTornLine: kill -9 in the middle of a file sink write
// (a batch larger than the writer's buffer takes several write calls)
// leaves a line cut short at the end of the file. The restarted exporter
// appends to the file; its first document must still be a line of its own,
// or NDJSON readers drop it with the torn line although its batch was
// acknowledged. The torn line is made by hand so that the test does not
// depend on where a kill happens to land.
func TestFileSinkAfterTornLine(t *testing.T) {
	seed := testSeed(t)
	env := newEHEnv(t)
	cfg := env.config("a")
	torn := `{"@timestamp":"2026-11-07T00:00:00Z","ecs":{"version":"8.17.0"},"event":{"id":"TORN`
	if err := os.WriteFile(cfg.FilePath, []byte(torn), 0o600); err != nil {
		t.Fatal(err)
	}
	env.led.publishSpread(t, env.emu, genBodies(t, seed, 1000, time.Date(2026, 11, 7, 0, 0, 0, 0, time.UTC)))
	p := newProc(t, env.dir, "a", cfg.toml())
	p.Start(t)
	waitFor(t, 2*time.Minute, "every SSPR event in the file sink", allDelivered(t, env.led, p, cfg.FilePath), p)
	p.Stop(t)

	data, err := os.ReadFile(cfg.FilePath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for i, line := range lines {
		if i == 0 && line == torn {
			continue // the torn line itself, ended by the restarted writer
		}
		var d ecsDoc
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Errorf("line %d is not one JSON document after a restart on a torn line (%v): %.200s", i+1, err, line)
		}
	}
}

// TestHubOutageRecovers: the hub refuses AMQP connections for 15 seconds
// (longer than a reconnect attempt); the exporter reconnects by itself and
// delivers what arrived meanwhile, and its checkpoints never go back.
func TestHubOutageRecovers(t *testing.T) {
	const outage = 15 * time.Second
	outageRecovers(t, time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC), outage,
		func(env *ehEnv) error { return env.emu.RefuseConnections(outage) }, nil)
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// runCheck runs `sspr-exporter check` on a config and returns its exit
// code and standard output.
func runCheck(t *testing.T, dir, cfg string, args ...string) (int, string) {
	t.Helper()
	path := filepath.Join(dir, "check.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exporterBin, append([]string{"check", "--config", path}, args...)...)
	cmd.Env = childEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("check: %v\n%s", err, stderr.String())
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// checkLine returns the line of check's report about name.
func checkLine(out, name string) string {
	for line := range strings.Lines(out) {
		rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(line, "OK"), "FAIL"))
		if rest == name || strings.HasPrefix(rest, name+":") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// TestCheckUnreachableHub: `check` with a hub that refuses connections and
// a healthy storage account without the checkpoint container. The hub line
// fails with the endpoint and "connection refused" (not a timeout: the
// deadline given is far longer than the test allows itself); the storage
// line passes and says run creates the container.
func TestCheckUnreachableHub(t *testing.T) {
	az := azurite.Start(t)
	dir := t.TempDir()
	addr := closedAddr(t)
	cfg := exporterConfig{
		EventHubsConn: "Endpoint=sb://" + addr + ";SharedAccessKeyName=listen;SharedAccessKey=ZW11bGF0b3I=;UseDevelopmentEmulator=true",
		Hub:           "audit",
		StorageConn:   az.ConnectionString(),
		Container:     "checkpoints",
		FilePath:      filepath.Join(dir, "out.ndjson"),
		DeadLetter:    filepath.Join(dir, "deadletter.ndjson"),
	}
	start := time.Now()
	code, out := runCheck(t, dir, cfg.toml(), "--timeout", "5m")
	t.Logf("check took %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	hub := checkLine(out, "input.eventhubs")
	if !strings.HasPrefix(hub, "FAIL") || !strings.Contains(hub, "amqp://"+addr) || !strings.Contains(hub, "connection refused") {
		t.Errorf("hub line %q, want a FAIL naming amqp://%s and connection refused", hub, addr)
	}
	store := checkLine(out, "input.eventhubs.checkpoint_store")
	if want := `OK   input.eventhubs.checkpoint_store: container "checkpoints" does not exist yet; run creates it`; store != want {
		t.Errorf("store line %q, want %q", store, want)
	}
	if strings.Contains(out, "ZW11bGF0b3I=") || strings.Contains(out, azurite.Key) {
		t.Error("check printed a key")
	}
}

// httpGet returns the status and body of a GET, or status 0 when the
// server does not answer.
func httpGet(url string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// readyz returns "" once /readyz answers code and its line for
// source.eventhubs holds every part.
func readyz(addr string, code int, parts ...string) func() string {
	return func() string {
		got, body := httpGet("http://" + addr + "/readyz")
		line := ""
		for l := range strings.Lines(body) {
			if strings.HasPrefix(l, "source.eventhubs:") {
				line = strings.TrimSpace(l)
			}
		}
		if got != code {
			return fmt.Sprintf("/readyz %d, want %d: %s", got, code, body)
		}
		for _, p := range parts {
			if !strings.Contains(line, p) {
				return fmt.Sprintf("source.eventhubs line %q does not say %q", line, p)
			}
		}
		return ""
	}
}

// metricLines returns the /metrics lines of a metric.
func metricLines(addr, name string) []string {
	_, body := httpGet("http://" + addr + "/metrics")
	var out []string
	for l := range strings.Lines(body) {
		if strings.HasPrefix(l, name+"{") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// lagStale returns "" once every partition the instance owns reports
// sspr_exporter_source_partition_lag_stale as want.
func lagStale(addr string, partitions int, want string) func() string {
	return func() string {
		lines := metricLines(addr, "sspr_exporter_source_partition_lag_stale")
		if len(lines) != partitions {
			return fmt.Sprintf("lag_stale lines %v, want %d", lines, partitions)
		}
		for _, l := range lines {
			if !strings.HasSuffix(l, " "+want) {
				return fmt.Sprintf("lag_stale lines %v, want all %s", lines, want)
			}
		}
		return ""
	}
}

// TestHubOutageVisible: while the hub refuses connections, the exporter
// logs warnings naming the partition and the cause, /readyz turns 503 naming
// the partitions and "connection refused" after unhealthy_after, and the
// lag is flagged stale; when the hub is back all of that clears by itself
// and nothing is lost.
func TestHubOutageVisible(t *testing.T) {
	const outage = 45 * time.Second
	seed := testSeed(t)
	env := newEHEnv(t)
	bodies := genBodies(t, seed, envInt(t, "SSPR_E2E_RECORDS", 3000), time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC))
	half := len(bodies) / 2
	cfg := env.config("a")
	cfg.TelemetryAddr = closedAddr(t)
	cfg.EventHubsExtra = `unhealthy_after = "3s"` + "\n"
	p := newProc(t, env.dir, "a", cfg.toml())
	p.Start(t)
	env.led.publishSpread(t, env.emu, bodies[:half])
	waitFor(t, 2*time.Minute, "first half delivered", allDelivered(t, env.led, p, cfg.FilePath), p)
	waitFor(t, time.Minute, "ready with fresh lags", func() string {
		if msg := readyz(cfg.TelemetryAddr, http.StatusOK)(); msg != "" {
			return msg
		}
		return lagStale(cfg.TelemetryAddr, env.emu.Partitions, "0")()
	}, p)

	if err := env.emu.RefuseConnections(outage); err != nil {
		t.Fatal(err)
	}
	refused := time.Now()
	waitFor(t, 30*time.Second, "/readyz 503 with the cause", readyz(cfg.TelemetryAddr, http.StatusServiceUnavailable,
		"partitions 0, 1, 2, 3 cannot be read", "connection refused"), p)
	_, body := httpGet("http://" + cfg.TelemetryAddr + "/readyz")
	t.Logf("%s into the outage:\n%s", time.Since(refused).Round(time.Second), body)
	waitFor(t, 40*time.Second, "lags flagged stale", lagStale(cfg.TelemetryAddr, env.emu.Partitions, "1"), p)
	warned := map[string]bool{}
	for line := range strings.Lines(p.RunLog()) {
		var rec struct {
			Level, Msg, Partition, Error string
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Level == "WARN" && rec.Msg == "event hubs partition cannot be read; retrying" && strings.Contains(rec.Error, "connection refused") {
			warned[rec.Partition] = true
		}
	}
	// The log handler's repeat limiter may fold the warnings of different
	// partitions into one; each warning names its partition and cause.
	if len(warned) == 0 || warned[""] {
		t.Errorf("warnings naming a partition and the cause: %v", warned)
	}

	env.led.publishSpread(t, env.emu, bodies[half:])
	waitFor(t, outage+2*time.Minute, "ready with fresh lags after the outage", func() string {
		if msg := readyz(cfg.TelemetryAddr, http.StatusOK)(); msg != "" {
			return msg
		}
		return lagStale(cfg.TelemetryAddr, env.emu.Partitions, "0")()
	}, p)
	waitFor(t, 2*time.Minute, "every body delivered", allDelivered(t, env.led, p, cfg.FilePath), p)
	waitFor(t, time.Minute, "checkpoints at the last events", checkpointsAt(t, env), p)
	p.Stop(t)
}

// TestWrongConsumerGroupNotReady: with a consumer group the hub does not
// have, /readyz turns 503 and says which consumer group does not exist.
func TestWrongConsumerGroupNotReady(t *testing.T) {
	env := newEHEnv(t)
	cfg := env.config("a")
	cfg.TelemetryAddr = closedAddr(t)
	cfg.EventHubsExtra = `consumer_group = "sspr-exporter"` + "\n" + `unhealthy_after = "2s"` + "\n"
	p := newProc(t, env.dir, "a", cfg.toml())
	p.Start(t)
	waitFor(t, time.Minute, "/readyz 503 naming the consumer group", readyz(cfg.TelemetryAddr, http.StatusServiceUnavailable,
		`consumer group "sspr-exporter" does not exist`), p)
	_, body := httpGet("http://" + cfg.TelemetryAddr + "/readyz")
	t.Logf("/readyz:\n%s", body)
	p.Stop(t)
}
