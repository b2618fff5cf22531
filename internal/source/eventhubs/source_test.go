package eventhubs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2/checkpoints"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/azurite"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/eventhubsemu"
)

// testEnv is an emulator and an Azurite for one test.
type testEnv struct {
	emu *eventhubsemu.Emulator
	az  *azurite.Server
}

func newEnv(t *testing.T, partitions int) *testEnv {
	t.Helper()
	return &testEnv{
		emu: eventhubsemu.Start(t, eventhubsemu.Options{Hub: "audit", Partitions: partitions}),
		az:  azurite.Start(t),
	}
}

func (e *testEnv) config() Config {
	cfg := DefaultConfig()
	cfg.ConnectionString = secret.New(e.emu.ConnectionString())
	cfg.EventHub = e.emu.Hub
	cfg.ReceiveWait = 200 * time.Millisecond
	cfg.UpdateInterval = 500 * time.Millisecond
	cfg.PartitionExpiration = 3 * time.Second
	cfg.StatsInterval = 300 * time.Millisecond
	cfg.CheckpointStore.ConnectionString = secret.New(e.az.ConnectionString())
	cfg.CheckpointStore.Container = "checkpoints"
	return cfg
}

func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("test", t.Name())
}

func open(t *testing.T, cfg Config, name string) *Source {
	t.Helper()
	return start(t, cfg, testLogger(t).With("instance", name))
}

// start builds a source and starts it; the test's cleanup closes it.
func start(t *testing.T, cfg Config, logger *slog.Logger) *Source {
	t.Helper()
	src, err := New(cfg, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = closeWithin(src, 30*time.Second) })
	if err := src.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return src
}

// closeWithin closes src, giving it d.
func closeWithin(src *Source, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return src.Close(ctx)
}

func (e *testEnv) publish(t *testing.T, partition string, bodies ...string) {
	t.Helper()
	raw := make([][]byte, len(bodies))
	for i, b := range bodies {
		raw[i] = []byte(b)
	}
	if _, err := e.emu.Publish(partition, raw...); err != nil {
		t.Fatal(err)
	}
}

// checkpoints returns the stored checkpoints by partition.
func (e *testEnv) checkpoints(t *testing.T, ctx context.Context) map[string]azeventhubs.Checkpoint {
	t.Helper()
	cc, err := container.NewClientFromConnectionString(e.az.ConnectionString(), "checkpoints", nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := checkpoints.NewBlobStore(cc, nil)
	if err != nil {
		t.Fatal(err)
	}
	list, err := store.ListCheckpoints(ctx, e.emu.Namespace(), e.emu.Hub, azeventhubs.DefaultConsumerGroup, nil)
	if bloberror.HasCode(err, bloberror.ContainerNotFound) {
		return map[string]azeventhubs.Checkpoint{} // no source has started yet
	}
	if err != nil {
		t.Fatalf("list checkpoints: %v", err)
	}
	out := map[string]azeventhubs.Checkpoint{}
	for _, c := range list {
		out[c.PartitionID] = c
	}
	return out
}

// waitCheckpoint waits until partition's checkpoint is at seq.
func (e *testEnv) waitCheckpoint(t *testing.T, ctx context.Context, partition string, seq int64) {
	t.Helper()
	for {
		c, ok := e.checkpoints(t, ctx)[partition]
		if ok && c.SequenceNumber != nil && *c.SequenceNumber == seq {
			if c.Offset == nil || *c.Offset != strconv.FormatInt(seq*1000, 10) {
				t.Fatalf("partition %s checkpoint offset = %v, want %d", partition, c.Offset, seq*1000)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("partition %s checkpoint = %+v, want sequence %d", partition, c, seq)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// collector reads and acknowledges batches, checking that each partition's
// sequence numbers only go forward within an instance (a rewind after a
// failed ack or an ownership change starts again at a checkpoint).
type collector struct {
	mu      sync.Mutex
	seen    map[string]int // body -> times seen
	byInst  map[string]map[string]bool
	batches int
}

func newCollector() *collector {
	return &collector{seen: map[string]int{}, byInst: map[string]map[string]bool{}}
}

func (c *collector) run(ctx context.Context, t *testing.T, name string, src *Source) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			b, err := src.Read(ctx)
			if err != nil {
				if !errors.Is(err, io.EOF) && ctx.Err() == nil {
					t.Errorf("%s Read: %v", name, err)
				}
				return
			}
			c.add(t, name, b)
			// Errors from the checkpoint are expected during storage outages.
			_ = b.Ack(ctx, nil)
		}
	}()
	return done
}

func (c *collector) add(t *testing.T, name string, b stream.Batch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches++
	if c.byInst[name] == nil {
		c.byInst[name] = map[string]bool{}
	}
	var prev int64 = -1
	for _, body := range b.Bodies {
		p := body.Pos
		if p.Kind != Kind || p.Topic != "audit" || p.Sequence == nil {
			t.Errorf("bad position %+v", p)
			continue
		}
		if *p.Sequence <= prev {
			t.Errorf("batch out of order at %s", p)
		}
		prev = *p.Sequence
		if want := strconv.FormatInt(*p.Sequence*1000, 10); p.Offset != want {
			t.Errorf("position %s: offset %s, want %s", p, p.Offset, want)
		}
		if want := fmt.Sprintf("p%s-%d", p.Partition, *p.Sequence); string(body.Data) != want {
			t.Errorf("position %s holds %q, want %q", p, body.Data, want)
		}
		c.seen[string(body.Data)]++
		c.byInst[name][p.Partition] = true
	}
}

func (c *collector) missing(want []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, w := range want {
		if c.seen[w] == 0 {
			out = append(out, w)
		}
	}
	return out
}

func (c *collector) waitAll(t *testing.T, ctx context.Context, want []string) {
	t.Helper()
	for {
		m := c.missing(want)
		if len(m) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d bodies never arrived, first %v", len(m), len(want), m[:min(len(m), 5)])
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// publishRound publishes n bodies named p<partition>-<sequence> to each
// partition and returns them; next holds each partition's next sequence.
func (e *testEnv) publishRound(t *testing.T, next map[string]int, partitions, n int) []string {
	t.Helper()
	var all []string
	for p := range partitions {
		id := strconv.Itoa(p)
		var bodies []string
		for range n {
			bodies = append(bodies, fmt.Sprintf("p%s-%d", id, next[id]))
			next[id]++
		}
		e.publish(t, id, bodies...)
		all = append(all, bodies...)
	}
	return all
}

func readBatch(t *testing.T, ctx context.Context, src *Source) stream.Batch {
	t.Helper()
	b, err := src.Read(ctx)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return b
}

func bodiesOf(b stream.Batch) []string {
	var out []string
	for _, body := range b.Bodies {
		out = append(out, string(body.Data))
	}
	return out
}

func TestBatchesCarryPositionsAndCheckpointAfterAck(t *testing.T) {
	env := newEnv(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env.publish(t, "0", "p0-0", "p0-1", "p0-2")
	env.publish(t, "1", "p1-0", "p1-1")

	src := open(t, env.config(), "a")
	got := map[string][]stream.Body{}
	for len(got["0"])+len(got["1"]) < 5 {
		b := readBatch(t, ctx, src)
		if len(b.Bodies) == 0 {
			t.Fatal("empty batch")
		}
		part := b.Bodies[0].Pos.Partition
		for _, body := range b.Bodies {
			if body.Pos.Partition != part {
				t.Fatalf("batch mixes partitions: %v", b.Bodies)
			}
		}
		got[part] = append(got[part], b.Bodies...)
		if err := b.Ack(ctx, nil); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
	for part, bodies := range got {
		for i, body := range bodies {
			seq := int64(i)
			want := stream.Position{Kind: "eventhubs", Topic: "audit", Partition: part, Offset: strconv.Itoa(i * 1000), Sequence: &seq}
			if body.Pos.String() != want.String() || string(body.Data) != fmt.Sprintf("p%s-%d", part, i) {
				t.Errorf("body %d of partition %s = %q at %s, want %s", i, part, body.Data, body.Pos, want)
			}
		}
	}
	env.waitCheckpoint(t, ctx, "0", 2)
	env.waitCheckpoint(t, ctx, "1", 1)

	// Stats see the acknowledged progress and, once refreshed, the lag.
	env.publish(t, "0", "p0-3")
	deadline := time.Now().Add(30 * time.Second)
	for {
		var p0 PartitionStats
		for _, ps := range src.Stats().Partitions {
			if ps.ID == "0" {
				p0 = ps
			}
		}
		if p0.LastEnqueuedSequence == 3 {
			if !p0.Owned || p0.CheckpointSequence != 2 || p0.Lag < 0 || p0.LastCheckpoint.IsZero() {
				t.Fatalf("partition 0 stats = %+v", p0)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never saw the last enqueued event: %+v", p0)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := src.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

func TestNoCheckpointBeforeAckAndResume(t *testing.T) {
	env := newEnv(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env.publish(t, "0", "p0-0", "p0-1", "p0-2")
	cfg := env.config()

	src := open(t, cfg, "first")
	first := readBatch(t, ctx, src)
	if fmt.Sprint(bodiesOf(first)) != "[p0-0 p0-1 p0-2]" {
		t.Fatalf("first batch = %v", bodiesOf(first))
	}
	// Closing with the batch unacknowledged: Close gives up at its deadline.
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	if err := src.Close(short); err == nil {
		t.Error("Close with a batch out returned nil")
	}
	cancelShort()
	if err := first.Ack(ctx, nil); err != nil {
		t.Logf("ack after close: %v", err)
	}
	if cps := env.checkpoints(t, ctx); len(cps) != 0 {
		t.Fatalf("checkpoints before any ack while open: %+v", cps)
	}

	// Reopened: the same events again; this time acknowledged.
	src = open(t, cfg, "second")
	again := readBatch(t, ctx, src)
	if fmt.Sprint(bodiesOf(again)) != "[p0-0 p0-1 p0-2]" {
		t.Fatalf("after reopen = %v, want the unacknowledged events again", bodiesOf(again))
	}
	if err := again.Ack(ctx, nil); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	env.waitCheckpoint(t, ctx, "0", 2)
	if err := src.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Restarted after the checkpoint: only what came after it.
	env.publish(t, "0", "p0-3")
	src = open(t, cfg, "third")
	next := readBatch(t, ctx, src)
	if fmt.Sprint(bodiesOf(next)) != "[p0-3]" {
		t.Fatalf("after restart = %v, want [p0-3]", bodiesOf(next))
	}
	_ = next.Ack(ctx, nil)
}

func TestAckWithErrorRereadsWithoutCheckpoint(t *testing.T) {
	env := newEnv(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env.publish(t, "0", "p0-0", "p0-1")
	src := open(t, env.config(), "a")

	b := readBatch(t, ctx, src)
	if err := b.Ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	env.waitCheckpoint(t, ctx, "0", 1)

	env.publish(t, "0", "p0-2", "p0-3")
	failed := readBatch(t, ctx, src)
	if fmt.Sprint(bodiesOf(failed)) != "[p0-2 p0-3]" {
		t.Fatalf("batch = %v", bodiesOf(failed))
	}
	if err := failed.Ack(ctx, errors.New("sink down")); err != nil {
		t.Fatalf("Ack(err): %v", err)
	}
	if err := failed.Ack(ctx, nil); err == nil {
		t.Error("second Ack of a batch returned nil")
	}
	again := readBatch(t, ctx, src)
	if fmt.Sprint(bodiesOf(again)) != "[p0-2 p0-3]" {
		t.Fatalf("after failed ack = %v, want the same events again", bodiesOf(again))
	}
	if c := env.checkpoints(t, ctx)["0"]; c.SequenceNumber == nil || *c.SequenceNumber != 1 {
		t.Fatalf("checkpoint moved on a failed ack: %+v", c)
	}
	_ = again.Ack(ctx, nil)
	env.waitCheckpoint(t, ctx, "0", 3)
}

func TestOnePartitionBatchAtATime(t *testing.T) {
	env := newEnv(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := env.config()
	cfg.ReceiveBatchSize = 2
	env.publish(t, "0", "p0-0", "p0-1", "p0-2", "p0-3")
	src := open(t, cfg, "a")
	b := readBatch(t, ctx, src)
	if fmt.Sprint(bodiesOf(b)) != "[p0-0 p0-1]" {
		t.Fatalf("first = %v", bodiesOf(b))
	}
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	_, err := src.Read(short)
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Read before the ack = %v, want it to wait", err)
	}
	_ = b.Ack(ctx, nil)
	b = readBatch(t, ctx, src)
	if fmt.Sprint(bodiesOf(b)) != "[p0-2 p0-3]" {
		t.Fatalf("second = %v", bodiesOf(b))
	}
	_ = b.Ack(ctx, nil)
}

func TestTwoInstancesShareAndTakeOver(t *testing.T) {
	const partitions = 4
	env := newEnv(t, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := env.config()
	next := map[string]int{}
	var want []string

	a, b := open(t, cfg, "a"), open(t, cfg, "b")
	col := newCollector()
	doneA := col.run(ctx, t, "a", a)
	doneB := col.run(ctx, t, "b", b)

	// Keep publishing until both instances own partitions.
	deadline := time.Now().Add(60 * time.Second)
	for {
		want = append(want, env.publishRound(t, next, partitions, 3)...)
		col.waitAll(t, ctx, want)
		if owned(a) > 0 && owned(b) > 0 && owned(a)+owned(b) == partitions {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions never split: a owns %d, b owns %d", owned(a), owned(b))
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("split: a owns %d, b owns %d", owned(a), owned(b))

	// a leaves gracefully; b takes every partition and nothing is lost.
	if err := a.Close(ctx); err != nil {
		t.Fatalf("Close a: %v", err)
	}
	<-doneA
	want = append(want, env.publishRound(t, next, partitions, 5)...)
	col.waitAll(t, ctx, want)
	deadline = time.Now().Add(60 * time.Second)
	for owned(b) != partitions {
		if time.Now().After(deadline) {
			t.Fatalf("b owns %d partitions after a left", owned(b))
		}
		time.Sleep(100 * time.Millisecond)
	}
	want = append(want, env.publishRound(t, next, partitions, 2)...)
	col.waitAll(t, ctx, want)
	col.mu.Lock()
	if len(col.byInst["b"]) != partitions {
		t.Errorf("b read partitions %v", col.byInst["b"])
	}
	col.mu.Unlock()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close b: %v", err)
	}
	<-doneB
	for p := range partitions {
		id := strconv.Itoa(p)
		env.waitCheckpoint(t, ctx, id, int64(next[id]-1))
	}
}

func owned(s *Source) int { return s.parts.Owned() }

func TestStorageOutageRecovers(t *testing.T) {
	saved := blobRetry
	blobRetry = policy.RetryOptions{MaxRetries: 1, RetryDelay: 100 * time.Millisecond, MaxRetryDelay: 200 * time.Millisecond, TryTimeout: 2 * time.Second}
	t.Cleanup(func() { blobRetry = saved })
	const partitions = 2
	env := newEnv(t, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	next := map[string]int{}
	src := open(t, env.config(), "a")
	col := newCollector()
	done := col.run(ctx, t, "a", src)

	want := env.publishRound(t, next, partitions, 3)
	col.waitAll(t, ctx, want)
	for p := range partitions {
		env.waitCheckpoint(t, ctx, strconv.Itoa(p), 2)
	}

	if err := env.az.Stop(); err != nil {
		t.Fatal(err)
	}
	want = append(want, env.publishRound(t, next, partitions, 3)...)
	// Storage down long enough for the processor to fail and be restarted.
	deadline := time.Now().Add(30 * time.Second)
	for src.Ready() == nil {
		if time.Now().After(deadline) {
			t.Fatal("still ready 30s into the storage outage")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("during the outage: %v", src.Ready())
	time.Sleep(2 * time.Second)
	if err := env.az.Start(); err != nil {
		t.Fatal(err)
	}
	want = append(want, env.publishRound(t, next, partitions, 3)...)
	col.waitAll(t, ctx, want)
	// Checkpoints catch up by themselves and are still readable.
	for p := range partitions {
		env.waitCheckpoint(t, ctx, strconv.Itoa(p), int64(next[strconv.Itoa(p)]-1))
	}
	deadline = time.Now().Add(30 * time.Second)
	for src.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready after the outage: %v", src.Ready())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestEmulatorConnectionLossRecovers(t *testing.T) {
	const partitions = 2
	env := newEnv(t, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	next := map[string]int{}
	src := open(t, env.config(), "a")
	col := newCollector()
	done := col.run(ctx, t, "a", src)

	want := env.publishRound(t, next, partitions, 3)
	col.waitAll(t, ctx, want)

	if err := env.emu.DropConnections(); err != nil {
		t.Fatal(err)
	}
	want = append(want, env.publishRound(t, next, partitions, 3)...)
	col.waitAll(t, ctx, want)

	if err := env.emu.RefuseConnections(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	want = append(want, env.publishRound(t, next, partitions, 3)...)
	col.waitAll(t, ctx, want)
	for p := range partitions {
		env.waitCheckpoint(t, ctx, strconv.Itoa(p), int64(next[strconv.Itoa(p)]-1))
	}
	cancel()
	<-done
	col.mu.Lock()
	defer col.mu.Unlock()
	var dup []string
	for body, n := range col.seen {
		if n > 1 {
			dup = append(dup, body)
		}
	}
	sort.Strings(dup)
	t.Logf("%d batches, %d bodies seen more than once (allowed: at least once)", col.batches, len(dup))
}

// TestNewOnlyBuilds: a source that is built but not started runs no
// processor: it claims nothing, and a started instance of the same
// consumer group reads every partition.
func TestNewOnlyBuilds(t *testing.T) {
	env := newEnv(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	idle, err := New(env.config(), testLogger(t).With("instance", "idle"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeWithin(idle, 30*time.Second) })
	src := open(t, env.config(), "started")
	col := newCollector()
	done := col.run(ctx, t, "started", src)
	next := map[string]int{}
	col.waitAll(t, ctx, env.publishRound(t, next, 2, 2))
	deadline := time.Now().Add(30 * time.Second)
	for owned(src) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the started instance owns %d partitions, want 2", owned(src))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := idle.Ready(); err != errStarting {
		t.Fatalf("ready of the source never started: %v, want %v", err, errStarting)
	}
	if n := owned(idle); n != 0 {
		t.Fatalf("the source never started owns %d partitions", n)
	}
	if _, err := idle.Read(ctx); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("read of the source never started: %v, want an error", err)
	}
	cancel()
	<-done
}

// TestStartContextEndsTheSource: ending the context given to Start stops
// the processor: the partition is released, Read says the source stopped,
// and Close still returns at once.
func TestStartContextEndsTheSource(t *testing.T) {
	env := newEnv(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env.publish(t, "0", "p0-0")
	src, err := New(env.config(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeWithin(src, 30*time.Second) })
	runCtx, stop := context.WithCancel(ctx)
	if err := src.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	b := readBatch(t, ctx, src)
	if err := b.Ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	env.waitCheckpoint(t, ctx, "0", 0)
	stop()
	if _, err := src.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after the start context ended = %v, want context.Canceled", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for owned(src) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the partition is still owned after the start context ended")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := closeWithin(src, 30*time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
