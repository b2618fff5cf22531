package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/azurite"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/eventhubsemu"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/kafkabroker"
)

// Recognisable fake credentials: none may ever appear in the exporter's logs.
const (
	chaosESKey      = "CHAOS-SECRET-ES-KEY-123"
	chaosKafkaPass  = "CHAOS-SECRET-KAFKA-PW-456"
	chaosEventHubKy = "CHAOS-SECRET-EH-KEY-789"
	chaosTopic      = "entra-sspr-chaos"
	chaosIndexGlob  = "entra-sspr-"
)

// chaosEnv is the whole chain: emulator → exporter → a real Elasticsearch
// node (behind a fault proxy) and Kafka, checkpoints in Azurite.
type chaosEnv struct {
	emu *eventhubsemu.Emulator
	az  *azurite.Server
	es  *esNode
	kb  *kafkabroker.Broker
	dir string
	led *ledger
	kr  *kafkaReader
}

// fault is one kind of injected failure; run blocks until it is cleared.
type fault struct {
	name string
	run  func(env *chaosEnv, rng *rand.Rand) error
}

var faults = []fault{
	{"es-429-storm", func(env *chaosEnv, rng *rand.Rand) error {
		// Whole requests refused, then a share of the items answered 429
		// although the node stored them (lost acknowledgements).
		env.es.proxy.FailNext(5+rng.IntN(10), 429)
		var mu sync.Mutex
		hr := rand.New(rand.NewPCG(rng.Uint64(), 1))
		env.es.proxy.SetItemFaults(func() bool {
			mu.Lock()
			defer mu.Unlock()
			return hr.IntN(3) == 0
		})
		time.Sleep(randDuration(rng, 2*time.Second, 4*time.Second))
		env.es.proxy.SetItemFaults(nil)
		return nil
	}},
	{"es-down", func(env *chaosEnv, rng *rand.Rand) error {
		// The way to the node closes every connection.
		env.es.proxy.SetDown(true)
		time.Sleep(randDuration(rng, 2*time.Second, 5*time.Second))
		env.es.proxy.SetDown(false)
		return nil
	}},
	{"es-node-kill", func(env *chaosEnv, rng *rand.Rand) error {
		// kill -9 of the node in the middle of bulk requests, and a restart
		// on the same port and data once it is down for a while.
		if err := env.es.node.Kill(); err != nil {
			return fmt.Errorf("kill the node: %w", err)
		}
		time.Sleep(randDuration(rng, 0, 2*time.Second))
		if err := env.es.node.Restart(); err != nil {
			return fmt.Errorf("restart the node: %w", err)
		}
		return nil
	}},
	{"es-reset", func(env *chaosEnv, rng *rand.Rand) error {
		// Bulk requests the node carries out, whose answers never come:
		// the connection is reset instead.
		env.es.proxy.ResetAfterNext(3 + rng.IntN(5))
		time.Sleep(randDuration(rng, 2*time.Second, 4*time.Second))
		env.es.proxy.ResetAfterNext(0)
		return nil
	}},
	{"es-slow", func(env *chaosEnv, rng *rand.Rand) error {
		// Every answer held back for seconds (under request_timeout).
		env.es.proxy.SetDelay(randDuration(rng, time.Second, 3*time.Second))
		time.Sleep(randDuration(rng, 3*time.Second, 5*time.Second))
		env.es.proxy.SetDelay(0)
		return nil
	}},
	{"kafka-restart", func(env *chaosEnv, rng *rand.Rand) error {
		if err := env.kb.Stop(); err != nil {
			return fmt.Errorf("stop broker: %w", err)
		}
		time.Sleep(randDuration(rng, 0, 2*time.Second))
		if err := env.kb.Restart(); err != nil {
			return fmt.Errorf("restart broker: %w", err)
		}
		return nil
	}},
	{"amqp-drop", func(env *chaosEnv, rng *rand.Rand) error {
		if err := env.emu.DropConnections(); err != nil {
			return err
		}
		time.Sleep(randDuration(rng, 500*time.Millisecond, 2*time.Second))
		return env.emu.RefuseConnections(time.Duration(1+rng.IntN(3)) * time.Second)
	}},
	{"storage-outage", func(env *chaosEnv, rng *rand.Rand) error {
		if err := env.az.Stop(); err != nil {
			return err
		}
		time.Sleep(randDuration(rng, 2*time.Second, 5*time.Second))
		return env.az.Start()
	}},
}

// kafkaReader reads the topic from the start, keeping counts by event id.
type kafkaReader struct {
	addr  string
	next  map[int]int64
	count map[string]int
	msgs  int
}

// poll reads what was appended since the last call.
func (k *kafkaReader) poll(ctx context.Context) error {
	conn, err := kafka.DialContext(ctx, "tcp", k.addr)
	if err != nil {
		return err
	}
	parts, err := conn.ReadPartitions(chaosTopic)
	_ = conn.Close()
	if err != nil {
		return err
	}
	for _, p := range parts {
		if err := k.pollPartition(ctx, p.ID); err != nil {
			return fmt.Errorf("partition %d: %w", p.ID, err)
		}
	}
	return nil
}

func (k *kafkaReader) pollPartition(ctx context.Context, part int) error {
	lc, err := kafka.DialLeader(ctx, "tcp", k.addr, chaosTopic, part)
	if err != nil {
		return err
	}
	defer lc.Close()
	last, err := lc.ReadLastOffset()
	if err != nil {
		return err
	}
	for k.next[part] < last {
		from := k.next[part]
		_ = lc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := lc.Seek(k.next[part], kafka.SeekAbsolute); err != nil {
			return err
		}
		batch := lc.ReadBatch(1, 16<<20)
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			if m.Offset < k.next[part] {
				continue
			}
			var d ecsDoc
			if err := json.Unmarshal(m.Value, &d); err != nil || d.Event.ID == "" {
				return fmt.Errorf("offset %d: not an ECS document: %q", m.Offset, m.Value)
			}
			k.count[d.Event.ID]++
			k.msgs++
			k.next[part] = m.Offset + 1
		}
		if err := batch.Close(); err != nil && !errors.Is(err, kafka.RequestTimedOut) {
			return err
		}
		if k.next[part] == from {
			return fmt.Errorf("no progress at offset %d of %d", from, last)
		}
	}
	return nil
}

// exporterTOML is the exporter's configuration; without es, the
// Elasticsearch output is off (for the setup run: the test installs what
// the node takes of the templates itself, see startESNode).
func (env *chaosEnv) exporterTOML(dl string, es bool) string {
	ehConn := "Endpoint=sb://" + env.emu.Namespace() + ";SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=" + chaosEventHubKy + ";UseDevelopmentEmulator=true"
	extra := fmt.Sprintf(`
[output.elasticsearch]
enabled = %v
# The node has no ILM: its templates are installed by the test, and the
# exporter runs as a writer that does not check them.
skip_setup_check = true
addresses = [%s]
api_key = %s
request_timeout = "10s"
log_interval = "5s"

[output.elasticsearch.retry]
initial_backoff = "100ms"
max_backoff = "2s"

[output.kafka]
enabled = true
brokers = [%s]
topic = %s
dial_timeout = "5s"
write_timeout = "5s"
error_log_interval = "5s"

[output.kafka.retry]
initial_backoff = "100ms"
max_backoff = "2s"

[output.kafka.sasl]
mechanism = "scram-sha-512"
username = %s
password = %s

[output.kafka.tls]
enabled = true
ca_file = %s

[output.kafka.setup]
partitions = 3
replication_factor = 1
`, es, tomlStr(env.es.URL()), tomlStr(chaosESKey), tomlStr(env.kb.SASLAddr()), tomlStr(chaosTopic),
		tomlStr(env.kb.User()), tomlStr(chaosKafkaPass), tomlStr(env.kb.CAFile()))
	return exporterConfig{
		EventHubsConn: ehConn,
		Hub:           env.emu.Hub,
		StorageConn:   env.az.ConnectionString(),
		Container:     "checkpoints",
		DeadLetter:    dl,
		Extra:         extra,
	}.toml()
}

// roundRow is one line of the summary table.
type roundRow struct {
	round       int
	faults      string
	killAfter   time.Duration
	bodies      int
	poison      int
	ssprSent    int
	esDocs      int
	esDups      int
	kafkaMsgs   int
	kafkaDups   int
	deadLetters int
	selfExits   int
	ckptChecked string // bodies at or before the checkpoints checked after the kill
	converged   time.Duration
}

// checkAfterKill checks, while the exporter is dead, that every SSPR event
// of every body at or before its partition's checkpoint is in
// Elasticsearch and in Kafka. A fault in progress may make the checkpoints,
// Kafka or the node unreadable; that part of the check is then skipped and
// said so.
func (env *chaosEnv) checkAfterKill(t *testing.T, round int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	cps, err := loadCheckpoints(ctx, env.az.ConnectionString(), "checkpoints")
	cancel()
	if errors.Is(err, errCorruptCheckpoint) {
		t.Errorf("round %d: %v", round, err)
		return "corrupt"
	}
	if err != nil {
		t.Logf("round %d: checkpoints unreadable after the kill (storage outage?): %v", round, err)
		return "skipped"
	}
	es, eserr := env.es.counts()
	kctx, kcancel := context.WithTimeout(context.Background(), 10*time.Second)
	kerr := env.kr.poll(kctx)
	kcancel()
	checked := 0
	for _, b := range env.led.snapshot() {
		cp, ok := cps[b.partition]
		if !ok || b.seq > cp.seq {
			continue
		}
		checked++
		if b.seq == cp.seq && b.offset != cp.offset {
			t.Errorf("round %d: partition %s checkpoint at sequence %d has offset %s, the event has %s", round, b.partition, cp.seq, cp.offset, b.offset)
		}
		for _, id := range b.ids {
			if eserr == nil && es[id] == 0 {
				t.Errorf("round %d: partition %s checkpointed at %d, but %s (sequence %d) is not in Elasticsearch", round, b.partition, cp.seq, id, b.seq)
			}
			if kerr == nil && env.kr.count[id] == 0 {
				t.Errorf("round %d: partition %s checkpointed at %d, but %s (sequence %d) is not in Kafka", round, b.partition, cp.seq, id, b.seq)
			}
		}
	}
	switch {
	case kerr != nil && eserr != nil:
		t.Logf("round %d: Kafka and Elasticsearch unreadable after the kill (restarts?), checked neither: %v; %v", round, kerr, eserr)
		return strconv.Itoa(checked) + " (neither)"
	case kerr != nil:
		t.Logf("round %d: Kafka unreadable after the kill (broker restart?), checked Elasticsearch only: %v", round, kerr)
		return strconv.Itoa(checked) + " (ES only)"
	case eserr != nil:
		t.Logf("round %d: Elasticsearch unreadable after the kill (node restart?), checked Kafka only: %v", round, eserr)
		return strconv.Itoa(checked) + " (Kafka only)"
	}
	return strconv.Itoa(checked)
}

// TestChaos runs rounds of traffic with poison bodies through the whole
// chain while injecting faults (the Elasticsearch node itself killed with
// SIGKILL and restarted among them) and killing the exporter, and checks
// after every round that every SSPR event reached both sinks (exactly one
// copy in Elasticsearch, at least one in Kafka), that every poison body
// was dead-lettered with its position, and that the exporter recovered
// alone.
func TestChaos(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 7))
	rounds := envInt(t, "SSPR_CHAOS_ROUNDS", 10)
	records := envInt(t, "SSPR_CHAOS_RECORDS", 20000)
	poisonTotal := envInt(t, "SSPR_CHAOS_POISON", 1000)
	t.Logf("%d rounds, %d records, %d poison bodies", rounds, records, poisonTotal)

	env := &chaosEnv{
		emu: eventhubsemu.Start(t, eventhubsemu.Options{Hub: "audit", Partitions: 4}),
		az:  azurite.Start(t),
		es:  startESNode(t, chaosESKey),
		kb:  kafkabroker.Start(t, kafkabroker.Options{Password: chaosKafkaPass}),
		dir: t.TempDir(),
		led: &ledger{},
	}
	env.kr = &kafkaReader{addr: env.kb.PlainAddr(), next: map[int]int64{}, count: map[string]int{}}
	dlPath := filepath.Join(env.dir, "deadletter.ndjson")
	p := newProc(t, env.dir, "exporter", env.exporterTOML(dlPath, true))

	// The topic, as an operator would (the templates are on the node
	// already: it takes only part of them).
	setupCfg := filepath.Join(env.dir, "setup.toml")
	if err := os.WriteFile(setupCfg, []byte(env.exporterTOML(dlPath, false)), 0o600); err != nil {
		t.Fatal(err)
	}
	setupLog := filepath.Join(env.dir, "setup.log")
	setup := exec.Command(exporterBin, "setup", "--config", setupCfg)
	setup.Env = childEnv()
	out, err := setup.CombinedOutput()
	_ = os.WriteFile(setupLog, out, 0o600)
	if err != nil {
		t.Fatalf("sspr-exporter setup: %v\n%s", err, out)
	}

	good := genBodies(t, seed, records, time.Date(2026, 11, 6, 0, 0, 0, 0, time.UTC))
	p.Start(t)

	var rows []roundRow
	order := rng.Perm(len(faults))
	selfExits := 0
	// The credential scan and the summary also run when a round fails.
	defer func() {
		p.Stop(t)
		for _, path := range []string{p.logPath, setupLog} {
			data, _ := os.ReadFile(path)
			for _, s := range []string{chaosESKey, chaosKafkaPass, chaosEventHubKy, azurite.Key} {
				if n := strings.Count(string(data), s); n > 0 {
					t.Errorf("%s: credential %.10s… appears %d times", filepath.Base(path), s, n)
				}
			}
		}
		report(t, seed, rows, p, selfExits)
	}()
	for r := 1; r <= rounds; r++ {
		row := roundRow{round: r}
		// This round's bodies: its share of the stream with poison mixed in.
		lo, hi := len(good)*(r-1)/rounds, len(good)*r/rounds
		npoison := poisonTotal*r/rounds - poisonTotal*(r-1)/rounds
		batch := append([]body(nil), good[lo:hi]...)
		for i := range npoison {
			m := fmt.Sprintf("POISON-r%d-%d-%d", r, i, rng.IntN(1e6))
			pos := rng.IntN(len(batch) + 1)
			batch = append(batch[:pos], append([]body{{data: poisonBody(rng.IntN(3), m), poison: true, marker: m}}, batch[pos:]...)...)
		}
		row.bodies, row.poison = hi-lo, npoison

		// One fault from a shuffled cycle (so every kind comes up), and a
		// second one at random in some rounds.
		chosen := []fault{faults[order[(r-1)%len(faults)]]}
		if rng.IntN(3) == 0 {
			if f := faults[rng.IntN(len(faults))]; f.name != chosen[0].name {
				chosen = append(chosen, f)
			}
		}
		var names []string
		for _, f := range chosen {
			names = append(names, f.name)
		}
		row.faults = strings.Join(names, "+")
		row.killAfter = randDuration(rng, 300*time.Millisecond, 5*time.Second)
		start := time.Now()

		var wg sync.WaitGroup
		errs := make(chan error, len(chosen)+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := env.publishRound(batch); err != nil {
				errs <- fmt.Errorf("publish: %w", err)
			}
		}()
		for _, f := range chosen {
			delay := randDuration(rng, 0, 2*time.Second)
			frng := rand.New(rand.NewPCG(rng.Uint64(), uint64(r)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(delay)
				if err := f.run(env, frng); err != nil {
					errs <- fmt.Errorf("%s: %w", f.name, err)
				}
			}()
		}
		// kill -9 at a random moment of the round, and restart at once.
		selfExits += superviseFor(t, p, row.killAfter)
		p.Kill()
		row.ckptChecked = env.checkAfterKill(t, r)
		p.Start(t)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", r, err)
		}

		// Recovery with no manual action: everything arrives.
		var last string
		deadline := time.Now().Add(4 * time.Minute)
		for {
			selfExits += superviseFor(t, p, 500*time.Millisecond)
			if last = env.converged(t, dlPath); last == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d (%s): not recovered after 4 minutes: %s\n--- exporter log tail ---\n%s", r, row.faults, last, p.LogTail(6000))
			}
		}
		row.converged = time.Since(start).Round(100 * time.Millisecond)
		row.selfExits = selfExits
		env.checkRound(t, &row, dlPath)
		rows = append(rows, row)
		t.Logf("round %d: %s, kill after %s, converged after %s", r, row.faults, row.killAfter.Round(time.Millisecond), row.converged)
		if t.Failed() {
			break
		}
	}
}

// publishRound publishes bodies spread over the partitions, a few at a
// time; the ledger records where each one landed.
func (env *chaosEnv) publishRound(bodies []body) error {
	per := make([][]body, env.emu.Partitions)
	for i, b := range bodies {
		per[i%len(per)] = append(per[i%len(per)], b)
	}
	for left := len(bodies); left > 0; {
		for p := range per {
			n := min(5, len(per[p]))
			if n == 0 {
				continue
			}
			if err := env.led.publish(env.emu, strconv.Itoa(p), per[p][:n]...); err != nil {
				return err
			}
			per[p] = per[p][n:]
			left -= n
		}
	}
	return nil
}

// superviseFor waits d, failing the test if the exporter exited by itself:
// it must ride out every fault, including an output that is down when it
// starts. It restarts an exited exporter, as a service manager would, so
// the rest of the suite still runs, and returns how many times it did.
func superviseFor(t *testing.T, p *proc, d time.Duration) int {
	t.Helper()
	restarts := 0
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if p.Exited() {
			t.Errorf("the exporter exited by itself:\n%s", tail(p.RunLog(), 4000))
			p.Kill() // reaps the finished run
			time.Sleep(time.Second)
			p.Start(t)
			restarts++
		}
		time.Sleep(min(100*time.Millisecond, time.Until(end)))
	}
	return restarts
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// converged returns "" once every SSPR id published is in Elasticsearch
// and Kafka and every poison body is in the dead letters.
func (env *chaosEnv) converged(t *testing.T, dlPath string) string {
	t.Helper()
	ids := env.led.ids()
	es, err := env.es.counts()
	if err != nil {
		return "reading Elasticsearch: " + err.Error()
	}
	var missES []string
	for _, id := range ids {
		if es[id] == 0 {
			missES = append(missES, id)
		}
	}
	if len(missES) > 0 {
		return fmt.Sprintf("%d of %d SSPR ids missing in Elasticsearch, e.g. %s", len(missES), len(ids), firstN(missES, 2))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := env.kr.poll(ctx); err != nil {
		return "reading kafka: " + err.Error()
	}
	var missK []string
	for _, id := range ids {
		if env.kr.count[id] == 0 {
			missK = append(missK, id)
		}
	}
	if len(missK) > 0 {
		return fmt.Sprintf("%d of %d SSPR ids missing in Kafka, e.g. %s", len(missK), len(ids), firstN(missK, 2))
	}
	dls := readDeadLetters(t, dlPath)
	missing := 0
	for _, b := range env.led.snapshot() {
		if b.poison {
			if _, ok := findDeadLetter(dls, env.emu.Hub, b); !ok {
				missing++
			}
		}
	}
	if missing > 0 {
		return fmt.Sprintf("%d poison bodies not dead-lettered", missing)
	}
	return ""
}

// checkRound asserts the invariants once a round has converged and fills
// the row's counts.
func (env *chaosEnv) checkRound(t *testing.T, row *roundRow, dlPath string) {
	t.Helper()
	want := map[string]bool{}
	for _, id := range env.led.ids() {
		want[id] = true
	}
	row.ssprSent = len(want)
	es, err := env.es.counts()
	if err != nil {
		t.Errorf("reading Elasticsearch after the round converged: %v", err)
	}
	row.esDocs = len(es)
	for id, n := range es {
		if !want[id] {
			t.Errorf("Elasticsearch holds %s, which is not an SSPR event of the stream", id)
		}
		if n > 1 {
			row.esDups += n - 1
			t.Errorf("Elasticsearch holds %d copies of %s across indices", n, id)
		}
	}
	row.kafkaMsgs = env.kr.msgs
	for id, n := range env.kr.count {
		if !want[id] {
			t.Errorf("Kafka holds %s, which is not an SSPR event of the stream", id)
		}
		row.kafkaDups += n - 1
	}
	dls := readDeadLetters(t, dlPath)
	row.deadLetters = len(dls)
	for _, r := range dls {
		if r.Stage == deadletter.StageSink {
			t.Errorf("a sink dead-lettered a document (%s): %s", r.Sink, r.Error)
		}
	}
	for _, b := range env.led.snapshot() {
		if b.poison {
			if !checkPoisonDeadLettered(t, dls, env.emu.Hub, b, b.marker) {
				t.Errorf("poison body %s at partition %s sequence %d not dead-lettered", b.marker, b.partition, b.seq)
			}
		}
	}
}

// report prints the summary table and writes it to $SSPR_E2E_REPORT.
func report(t *testing.T, seed uint64, rows []roundRow, p *proc, selfExits int) {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos suite, seed %d (replay with SSPR_CHAOS_SEED=%d)\n", seed, seed)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tfaults\tkill after\tcheckpointed bodies checked\tbodies\tpoison\tSSPR sent\tES docs\tES dups\tKafka msgs\tKafka dups\tdead letters\tself exits (total)\tconverged\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", r.round, r.faults, r.killAfter.Round(time.Millisecond), r.ckptChecked,
			r.bodies, r.poison, r.ssprSent, r.esDocs, r.esDups, r.kafkaMsgs, r.kafkaDups, r.deadLetters, r.selfExits, r.converged)
	}
	_ = tw.Flush()
	p.mu.Lock()
	starts, runs := p.starts, append([]int64(nil), p.rssKB...)
	p.mu.Unlock()
	fmt.Fprintf(&b, "rounds %d, exporter starts %d (self exits %d), max RSS of the exporter %d KiB\n", len(rows), starts, selfExits, p.MaxRSSKB())
	fmt.Fprintf(&b, "max RSS of each run in order, KiB: %v\n", runs)
	problems := p.logProblems()
	keys := make([]string, 0, len(problems))
	for k := range problems {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("warnings and errors logged by the exporter:\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "  %5d  %s\n", problems[k], k)
	}
	t.Log("\n" + b.String())
	if path := os.Getenv("SSPR_E2E_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Errorf("write SSPR_E2E_REPORT: %v", err)
		}
	}
}
