package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/kafkabroker"
)

// One broker serves every test of the package: starting a JVM is the
// slowest part of these tests. Tests do not run in parallel, so a test
// that stops the broker is the only one to see the outage.
var (
	shared kafkabroker.Shared
)

func TestMain(m *testing.M) { os.Exit(shared.Run(m, kafkabroker.Options{})) }

func broker(t testing.TB) *kafkabroker.Broker {
	t.Helper()
	return shared.Get(t)
}

var nameSeq struct {
	sync.Mutex
	n int
}

// uniqueName makes a topic or group name from the test name.
func uniqueName(t testing.TB, suffix string) string {
	nameSeq.Lock()
	defer nameSeq.Unlock()
	nameSeq.n++
	name := strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, t.Name())
	return fmt.Sprintf("%s.%s.%d", name, suffix, nameSeq.n)
}

// adminClient is a client with its own connections: the default transport
// would keep connections to a broker process that a test restarted.
func adminClient(t testing.TB, b *kafkabroker.Broker) *kgo.Client {
	tr := &kgo.Transport{DialTimeout: 5 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &kgo.Client{Addr: kgo.TCP(b.PlainAddr()), Timeout: 10 * time.Second, Transport: tr}
}

// createTopic creates a topic and waits until every partition has a leader.
func createTopic(t testing.TB, b *kafkabroker.Broker, partitions int) string {
	t.Helper()
	topic := uniqueName(t, "topic")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := adminClient(t, b)
	res, err := c.CreateTopics(ctx, &kgo.CreateTopicsRequest{Topics: []kgo.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1,
	}}})
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := res.Errors[topic]; err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	for {
		md, err := c.Metadata(ctx, &kgo.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == partitions {
			ok := true
			for _, p := range md.Topics[0].Partitions {
				ok = ok && p.Error == nil && p.Leader.Host != ""
			}
			if ok {
				return topic
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("topic %s has no leaders: %v", topic, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// produce appends values to one partition and returns their offsets.
func produce(t testing.TB, b *kafkabroker.Broker, topic string, partition int, values ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = produceOnce(ctx, b, topic, partition, values); err == nil {
			return
		}
		// Right after a broker restart the leader may not be known yet.
		select {
		case <-ctx.Done():
			t.Fatalf("produce to %s/%d: %v", topic, partition, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("produce to %s/%d: %v", topic, partition, err)
}

func produceOnce(ctx context.Context, b *kafkabroker.Broker, topic string, partition int, values []string) error {
	conn, err := kgo.DialLeader(ctx, "tcp", b.PlainAddr(), topic, partition)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
	const chunk = 500
	for len(values) > 0 {
		n := min(chunk, len(values))
		msgs := make([]kgo.Message, n)
		for i, v := range values[:n] {
			msgs[i] = kgo.Message{Value: []byte(v)}
		}
		if _, err := conn.WriteMessages(msgs...); err != nil {
			return err
		}
		values = values[n:]
	}
	return nil
}

func ids(prefix string, from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%05d", prefix, i))
	}
	return out
}

// testConfig is a plaintext config for the shared broker, tuned so that
// joins and rebalances take a second or two.
func testConfig(b *kafkabroker.Broker, group string, topics ...string) Config {
	cfg := DefaultConfig()
	cfg.Brokers = []string{b.PlainAddr()}
	cfg.Topics = topics
	cfg.GroupID = group
	cfg.SessionTimeout = 6 * time.Second
	cfg.HeartbeatInterval = time.Second
	cfg.RebalanceTimeout = 10 * time.Second
	cfg.RevokeGrace = 3 * time.Second
	cfg.RejoinBackoff = 300 * time.Millisecond
	cfg.DialTimeout = 5 * time.Second
	cfg.StatsInterval = time.Second
	cfg.Batch.MaxWait = 100 * time.Millisecond
	return cfg
}

type tWriter struct {
	t  testing.TB
	mu *sync.Mutex
	// buf keeps the log for assertions.
	buf *strings.Builder
}

func (w tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf.Write(p)
	w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// capture is a logger that writes to the test log and keeps what it wrote.
type capture struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func testLogger(t testing.TB) (*slog.Logger, *capture) {
	c := &capture{}
	return slog.New(slog.NewTextHandler(tWriter{t: t, mu: &c.mu, buf: &c.buf}, &slog.HandlerOptions{Level: slog.LevelInfo})), c
}

func newSource(t testing.TB, cfg Config) (*Source, *capture) {
	t.Helper()
	logger, c := testLogger(t)
	s, err := New(cfg, logger)
	if err != nil {
		t.Fatalf("new source: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx) // tests that care close it themselves and check
	})
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("start source: %v", err)
	}
	return s, c
}

// readBatch reads one batch or fails after d.
func readBatch(t testing.TB, s *Source, d time.Duration) stream.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	b, err := s.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v (ready: %v)", err, s.Ready())
	}
	return b
}

// readN reads batches (without acking) until n bodies arrived in total.
func readN(t testing.TB, s *Source, n int, d time.Duration) []stream.Batch {
	t.Helper()
	deadline := time.Now().Add(d)
	var out []stream.Batch
	got := 0
	for got < n {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("read %d of %d bodies before the deadline (ready: %v)", got, n, s.Ready())
		}
		b := readBatch(t, s, left)
		out = append(out, b)
		got += len(b.Bodies)
	}
	if got != n {
		t.Fatalf("read %d bodies, want exactly %d", got, n)
	}
	return out
}

func ack(t testing.TB, b stream.Batch, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if aerr := b.Ack(ctx, err); aerr != nil {
		t.Fatalf("ack: %v", aerr)
	}
}

func bodiesOf(bs []stream.Batch) []string {
	var out []string
	for _, b := range bs {
		for _, body := range b.Bodies {
			out = append(out, string(body.Data))
		}
	}
	return out
}

// consumer reads and acknowledges everything a source hands out, recording
// the bodies, until the source ends or stop is called.
type consumer struct {
	mu     sync.Mutex
	seen   map[string]int
	total  int
	cancel context.CancelFunc
	done   chan error
}

func consume(s *Source) *consumer { return consumeSlowly(s, 0) }

// consumeSlowly waits delay before acknowledging each batch, like a
// pipeline writing to a slow sink.
func consumeSlowly(s *Source, delay time.Duration) *consumer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &consumer{seen: map[string]int{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		for {
			b, err := s.Read(ctx)
			if err != nil {
				if errors.Is(err, io.EOF) || ctx.Err() != nil {
					err = nil
				}
				c.done <- err
				return
			}
			c.mu.Lock()
			for _, body := range b.Bodies {
				c.seen[string(body.Data)]++
				c.total++
			}
			c.mu.Unlock()
			if delay > 0 {
				time.Sleep(delay)
			}
			if err := b.Ack(ctx, nil); err != nil {
				c.done <- fmt.Errorf("ack: %w", err)
				return
			}
		}
	}()
	return c
}

func (c *consumer) stop() error {
	c.cancel()
	return <-c.done
}

func (c *consumer) has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[id] > 0
}

// waitAll waits until the consumers together saw every id.
func waitAll(t testing.TB, want []string, d time.Duration, cs ...*consumer) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var missing []string
		for _, id := range want {
			found := false
			for _, c := range cs {
				if c.has(id) {
					found = true
					break
				}
			}
			if !found {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d ids never delivered, first %q", len(missing), len(want), missing[0])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func owned(s *Source) int { return s.parts.Owned() }

// committed returns the group's committed offset of one partition, -1 when
// none.
func committed(t testing.TB, b *kafkabroker.Broker, group, topic string, partition int) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := adminClient(t, b)
	res, err := c.OffsetFetch(ctx, &kgo.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {partition}}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	if res.Error != nil {
		t.Fatalf("offset fetch: %v", res.Error)
	}
	for _, p := range res.Topics[topic] {
		if p.Partition == partition {
			if p.Error != nil {
				t.Fatalf("offset fetch partition %d: %v", partition, p.Error)
			}
			return p.CommittedOffset
		}
	}
	t.Fatalf("offset fetch: partition %d missing", partition)
	return 0
}
