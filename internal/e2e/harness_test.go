package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/gen"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/eventhubsemu"
)

// envInt reads a positive integer knob, or def.
func envInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// testSeed returns SSPR_CHAOS_SEED when set, else a fresh seed, and logs it
// so that a failing run can be replayed.
func testSeed(t testing.TB) uint64 {
	t.Helper()
	if v := os.Getenv("SSPR_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SSPR_CHAOS_SEED=%q: %v", v, err)
		}
		t.Logf("seed %d (from SSPR_CHAOS_SEED)", s)
		return s
	}
	s := uint64(time.Now().UnixNano())
	t.Logf("seed %d (replay with SSPR_CHAOS_SEED=%d)", s, s)
	return s
}

// body is one generated Event Hubs body and the SSPR event ids it holds.
type body struct {
	data   []byte
	ids    []string
	poison bool
	marker string // poison bodies: a unique string in the body
}

var ssprIDRe = regexp.MustCompile(`"id":"(SSPR_[0-9a-f-]+_[0-9]+)"`)

// genBodies generates a stream of bodies of 100 records and checks that the
// ids found in the bodies are exactly the generator's list.
func genBodies(t testing.TB, seed uint64, records int, start time.Time) []body {
	t.Helper()
	var buf bytes.Buffer
	st, err := gen.Write(&buf, gen.Options{Records: records, PerBody: 100, SSPRShare: 0.02, Seed: seed, Start: start}, true)
	if err != nil {
		t.Fatal(err)
	}
	var out []body
	found := map[string]bool{}
	for line := range bytes.Lines(buf.Bytes()) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		b := body{data: bytes.Clone(line)}
		for _, m := range ssprIDRe.FindAllSubmatch(line, -1) {
			b.ids = append(b.ids, string(m[1]))
			found[string(m[1])] = true
		}
		out = append(out, b)
	}
	if len(found) != len(st.SSPRIDs) || len(out) != st.Bodies {
		t.Fatalf("generator: %d bodies with %d distinct SSPR ids, generator says %d bodies and %d ids", len(out), len(found), st.Bodies, len(st.SSPRIDs))
	}
	for _, id := range st.SSPRIDs {
		if !found[id] {
			t.Fatalf("generator id %s not found in any body", id)
		}
	}
	return out
}

// published is a body as it landed in the hub.
type published struct {
	body
	partition string
	seq       int64
	offset    string
}

// ledger records every published body, for assertions.
type ledger struct {
	mu     sync.Mutex
	bodies []published
}

// publish appends bodies to a partition and records where they landed.
func (l *ledger) publish(emu *eventhubsemu.Emulator, partition string, bodies ...body) error {
	raw := make([][]byte, len(bodies))
	for i, b := range bodies {
		raw[i] = b.data
	}
	evs, err := emu.Publish(partition, raw...)
	if err != nil {
		return err
	}
	if len(evs) != len(bodies) {
		return fmt.Errorf("publish: %d bodies, %d events", len(bodies), len(evs))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, b := range bodies {
		l.bodies = append(l.bodies, published{body: b, partition: partition, seq: evs[i].SequenceNumber, offset: evs[i].Offset})
	}
	return nil
}

// snapshot returns the published bodies so far.
func (l *ledger) snapshot() []published {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]published(nil), l.bodies...)
}

// ids returns every SSPR id published so far.
func (l *ledger) ids() []string {
	var out []string
	for _, b := range l.snapshot() {
		out = append(out, b.ids...)
	}
	return out
}

// publishSpread publishes bodies round-robin over the partitions, a few
// per call.
func (l *ledger) publishSpread(t testing.TB, emu *eventhubsemu.Emulator, bodies []body) {
	t.Helper()
	const chunk = 10
	parts := emu.Partitions
	per := make([][]body, parts)
	for i, b := range bodies {
		per[i%parts] = append(per[i%parts], b)
	}
	for p, bs := range per {
		for len(bs) > 0 {
			n := min(chunk, len(bs))
			if err := l.publish(emu, strconv.Itoa(p), bs[:n]...); err != nil {
				t.Fatal(err)
			}
			bs = bs[n:]
		}
	}
}

// tomlStr quotes s as a TOML basic string (JSON string escapes are valid
// TOML escapes).
func tomlStr(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// exporterConfig is what differs between the exporter instances of a test.
type exporterConfig struct {
	EventHubsConn string
	Hub           string
	StorageConn   string
	Container     string
	FilePath      string // file sink; empty disables it
	DeadLetter    string
	Extra         string // more TOML, appended as is
	// EventHubsExtra is more TOML for the [input.eventhubs] table.
	EventHubsExtra string
	// TelemetryAddr is where /readyz and /metrics listen; empty: nowhere.
	TelemetryAddr string
}

func (c exporterConfig) toml() string {
	var b strings.Builder
	fmt.Fprintf(&b, `[input]
type = "eventhubs"

[input.eventhubs]
connection_string = %s
event_hub = %s
receive_wait = "200ms"
update_interval = "500ms"
partition_expiration = "3s"
stats_interval = "10s"
%s
[input.eventhubs.checkpoint_store]
connection_string = %s
container = %s

[dead_letter]
path = %s

[pipeline]
shutdown_grace = "20s"

[log]
level = "info"
format = "json"

[telemetry]
address = %s
log_repeat_interval = "5s"

[output.file]
`, tomlStr(c.EventHubsConn), tomlStr(c.Hub), c.EventHubsExtra, tomlStr(c.StorageConn), tomlStr(c.Container), tomlStr(c.DeadLetter), tomlStr(c.TelemetryAddr))
	if c.FilePath != "" {
		fmt.Fprintf(&b, "enabled = true\npath = %s\n", tomlStr(c.FilePath))
	} else {
		b.WriteString("enabled = false\n")
	}
	b.WriteString(c.Extra)
	return b.String()
}

// proc is one exporter instance; it may be started several times, each
// run appending to the same log file.
type proc struct {
	name    string
	cfgPath string
	logPath string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	maxRSSKB int64 // largest VmHWM of any run
	hwmKB    int64 // VmHWM of the current run, sampled
	runFrom  int64 // log size when the current run started
	starts   int
	exits    []string
	rssKB    []int64 // VmHWM of each finished run
}

// vmHWM reads the peak resident set of a process from /proc, in KiB.
// ru_maxrss is no use here: Linux carries the parent's peak over into a
// child across fork and exec, so it reports the test process's size.
func vmHWM(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// sampleHWM records the current run's peak resident set.
func (p *proc) sampleHWM(pid int) {
	if v := vmHWM(pid); v > 0 {
		p.mu.Lock()
		p.hwmKB = max(p.hwmKB, v)
		p.mu.Unlock()
	}
}

// newProc writes the instance's config file; Start runs it.
func newProc(t testing.TB, dir, name string, cfg string) *proc {
	t.Helper()
	p := &proc{name: name, cfgPath: filepath.Join(dir, name+".toml"), logPath: filepath.Join(dir, name+".log")}
	if err := os.WriteFile(p.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// childEnv is the test's environment without SSPR_ variables: the exporter
// reads those as config overrides.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SSPR_") {
			env = append(env, kv)
		}
	}
	return env
}

// Start runs the exporter.
func (p *proc) Start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		t.Fatalf("%s: already running", p.name)
	}
	logf, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := logf.Stat(); err == nil {
		p.runFrom = st.Size()
	}
	cmd := exec.Command(exporterBin, "run", "--config", p.cfgPath)
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		t.Fatalf("%s: start: %v", p.name, err)
	}
	p.starts++
	p.hwmKB = 0
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	pid := cmd.Process.Pid
	exited, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		// /proc/PID/status is gone once the process is reaped, so the
		// peak is sampled while it runs (and by Stop and Kill just
		// before they signal it).
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-exited:
				return
			case <-tick.C:
				p.sampleHWM(pid)
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		close(exited)
		<-sampled
		_ = logf.Close()
		p.mu.Lock()
		p.maxRSSKB = max(p.maxRSSKB, p.hwmKB)
		p.rssKB = append(p.rssKB, p.hwmKB)
		p.exits = append(p.exits, fmt.Sprint(err))
		p.mu.Unlock()
		close(done)
	}()
}

func (p *proc) running() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.done
}

func (p *proc) forget() {
	p.mu.Lock()
	p.cmd, p.done = nil, nil
	p.mu.Unlock()
}

// Stop sends SIGTERM and waits for a clean exit.
func (p *proc) Stop(t testing.TB) {
	t.Helper()
	cmd, done := p.running()
	if cmd == nil {
		return
	}
	p.sampleHWM(cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("%s: did not stop within 60s of SIGTERM; killed", p.name)
	}
	p.forget()
	if !cmd.ProcessState.Success() {
		t.Errorf("%s: exit after SIGTERM: %v\n%s", p.name, cmd.ProcessState, p.LogTail(4000))
	}
}

// Kill sends SIGKILL, as a crash would, and waits for the process to end.
func (p *proc) Kill() {
	cmd, done := p.running()
	if cmd == nil {
		return
	}
	p.sampleHWM(cmd.Process.Pid)
	_ = cmd.Process.Kill()
	<-done
	p.forget()
}

// Exited reports whether the current run ended by itself.
func (p *proc) Exited() bool {
	_, done := p.running()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// MaxRSSKB is the largest peak resident set (VmHWM) of any finished run,
// in KiB.
func (p *proc) MaxRSSKB() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxRSSKB
}

// RunLog returns what the current (or last) run logged.
func (p *proc) RunLog() string {
	p.mu.Lock()
	from := p.runFrom
	p.mu.Unlock()
	b, _ := os.ReadFile(p.logPath)
	if int64(len(b)) < from {
		return ""
	}
	return string(b[from:])
}

// LogTail returns the end of the instance's log.
func (p *proc) LogTail(n int) string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// docSet counts ECS documents by event.id in NDJSON files.
type docSet struct {
	count map[string]int
	torn  int // lines that were not one whole document
	bad   []string
}

type ecsDoc struct {
	Event struct {
		ID      string `json:"id"`
		Action  string `json:"action"`
		Dataset string `json:"dataset"`
		Kind    string `json:"kind"`
	} `json:"event"`
}

// readDocs reads the documents of NDJSON files. A line that is not one
// document (a write cut short by kill -9 and appended to after a restart)
// is counted as torn, and the last document starting in it is still read.
func readDocs(t testing.TB, paths ...string) docSet {
	t.Helper()
	ds := docSet{count: map[string]int{}}
	for _, path := range paths {
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			line := sc.Bytes()
			var d ecsDoc
			if err := json.Unmarshal(line, &d); err != nil {
				ds.torn++
				i := bytes.LastIndex(line, []byte(`{"@timestamp"`))
				if i <= 0 || json.Unmarshal(line[i:], &d) != nil {
					continue
				}
			}
			if d.Event.ID == "" || d.Event.Action == "" || d.Event.Dataset != "entra.sspr" || d.Event.Kind != "event" {
				ds.bad = append(ds.bad, string(line))
			}
			ds.count[d.Event.ID]++
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		_ = f.Close()
	}
	return ds
}

// missing returns the ids not in the set.
func (ds docSet) missing(ids []string) []string {
	var out []string
	for _, id := range ids {
		if ds.count[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// readDeadLetters reads dead-letter NDJSON files.
func readDeadLetters(t testing.TB, paths ...string) []deadletter.Record {
	t.Helper()
	var out []deadletter.Record
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for line := range bytes.Lines(data) {
			var r deadletter.Record
			if err := json.Unmarshal(line, &r); err != nil {
				// A line cut by kill -9 is not a record; the body it
				// described is read again and dead-lettered again.
				continue
			}
			out = append(out, r)
		}
	}
	return out
}

// checkpoint is one partition's checkpoint blob metadata.
type checkpoint struct {
	seq    int64
	offset string
}

// readBlobs lists the container's blobs with their metadata, by name.
func readBlobs(ctx context.Context, storageConn, containerName string) (map[string]map[string]string, error) {
	cc, err := container.NewClientFromConnectionString(storageConn, containerName, nil)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	pager := cc.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Include: container.ListBlobsInclude{Metadata: true}})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if bloberror.HasCode(err, bloberror.ContainerNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		for _, it := range page.Segment.BlobItems {
			md := map[string]string{}
			for k, v := range it.Metadata {
				if v != nil {
					md[strings.ToLower(k)] = *v
				}
			}
			out[*it.Name] = md
		}
	}
	return out, nil
}

// errCorruptCheckpoint marks a checkpoint blob whose metadata is not a
// valid checkpoint.
var errCorruptCheckpoint = errors.New("corrupt checkpoint")

// loadCheckpoints reads the checkpoint blobs (…/checkpoint/<partition>).
func loadCheckpoints(ctx context.Context, storageConn, containerName string) (map[string]checkpoint, error) {
	blobs, err := readBlobs(ctx, storageConn, containerName)
	if err != nil {
		return nil, fmt.Errorf("list checkpoint blobs: %w", err)
	}
	out := map[string]checkpoint{}
	for name, md := range blobs {
		i := strings.LastIndex(name, "/checkpoint/")
		if i < 0 {
			continue
		}
		part := name[i+len("/checkpoint/"):]
		seq, err := strconv.ParseInt(md["sequencenumber"], 10, 64)
		if err != nil || md["offset"] == "" {
			return nil, fmt.Errorf("%w: blob %s has metadata %v", errCorruptCheckpoint, name, md)
		}
		out[part] = checkpoint{seq: seq, offset: md["offset"]}
	}
	return out, nil
}

// readCheckpoints reads the checkpoint blobs and fails the test when they
// cannot be read or one is corrupt.
func readCheckpoints(t testing.TB, storageConn, containerName string) map[string]checkpoint {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cps, err := loadCheckpoints(ctx, storageConn, containerName)
	if err != nil {
		t.Fatal(err)
	}
	return cps
}

// owners returns the owner id of each partition's ownership blob.
func owners(t testing.TB, storageConn, containerName string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	blobs, err := readBlobs(ctx, storageConn, containerName)
	if err != nil {
		t.Fatalf("list ownership blobs: %v", err)
	}
	out := map[string]string{}
	for name, md := range blobs {
		if i := strings.LastIndex(name, "/ownership/"); i >= 0 {
			out[name[i+len("/ownership/"):]] = md["ownerid"]
		}
	}
	return out
}

// checkCheckpointed checks that every SSPR id of every body at or before
// its partition's checkpoint is in docs, and that each checkpoint names the
// offset the body at its sequence number was published with. It returns
// how many bodies the checkpoints cover.
func checkCheckpointed(t testing.TB, cps map[string]checkpoint, bodies []published, docs docSet) int {
	t.Helper()
	covered := 0
	for _, b := range bodies {
		cp, ok := cps[b.partition]
		if !ok || b.seq > cp.seq {
			continue
		}
		covered++
		if b.seq == cp.seq && b.offset != cp.offset {
			t.Errorf("partition %s checkpoint at sequence %d has offset %s, the event has %s", b.partition, cp.seq, cp.offset, b.offset)
		}
		for _, id := range b.ids {
			if docs.count[id] == 0 {
				t.Errorf("partition %s checkpointed at sequence %d, but id %s of the body at sequence %d is not in the output", b.partition, cp.seq, id, b.seq)
			}
		}
	}
	return covered
}

// waitFor polls cond until it returns "" or the timeout passes; the test
// then fails with cond's last message and the given logs.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() string, logs ...*proc) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, p := range logs {
				fmt.Fprintf(&b, "\n--- %s log tail ---\n%s", p.name, p.LogTail(3000))
			}
			t.Fatalf("%s: not done after %s: %s%s", what, timeout, msg, b.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// firstN shortens a list for messages.
func firstN(ids []string, n int) string {
	sort.Strings(ids)
	if len(ids) > n {
		return fmt.Sprintf("%v (and %d more)", ids[:n], len(ids)-n)
	}
	return fmt.Sprint(ids)
}

// randDuration is a duration in [lo, hi).
func randDuration(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// logProblems returns the warning and error messages an instance logged,
// with how often each appeared.
func (p *proc) logProblems() map[string]int {
	out := map[string]int{}
	data, _ := os.ReadFile(p.logPath)
	for line := range bytes.Lines(data) {
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(line, &rec) == nil && (rec.Level == "WARN" || rec.Level == "ERROR") {
			out[rec.Level+" "+rec.Msg]++
		}
	}
	return out
}
