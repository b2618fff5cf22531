package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/kafkaconn"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

func TestBatchesCarryBodiesAndPositions(t *testing.T) {
	b := broker(t)
	topic := createTopic(t, b, 3)
	counts := []int{37, 22, 9}
	for p, n := range counts {
		produce(t, b, topic, p, ids(fmt.Sprintf("p%d", p), 0, n)...)
	}
	cfg := testConfig(b, uniqueName(t, "group"), topic)
	cfg.Batch.MaxMessages = 10
	s, _ := newSource(t, cfg)

	next := map[string]int64{} // partition -> next expected offset
	total := 0
	for total < 37+22+9 {
		batch := readBatch(t, s, time.Minute)
		if len(batch.Bodies) == 0 || len(batch.Bodies) > 10 {
			t.Fatalf("batch of %d bodies, want 1..10", len(batch.Bodies))
		}
		part := batch.Bodies[0].Pos.Partition
		for _, body := range batch.Bodies {
			pos := body.Pos
			if pos.Kind != Kind || pos.Topic != topic || pos.Partition != part || pos.Sequence != nil || pos.File != "" {
				t.Fatalf("position %+v: want kind %q, topic %q, partition %s only", pos, Kind, topic, part)
			}
			off, err := strconv.ParseInt(pos.Offset, 10, 64)
			if err != nil {
				t.Fatalf("offset %q is not decimal: %v", pos.Offset, err)
			}
			if off != next[part] {
				t.Fatalf("partition %s: offset %d, want %d (in order, no gaps)", part, off, next[part])
			}
			next[part]++
			if want := fmt.Sprintf("p%s-%05d", part, off); string(body.Data) != want {
				t.Fatalf("partition %s offset %d: body %q, want %q", part, off, body.Data, want)
			}
			if body.Err != nil || body.Form != stream.FormInput {
				t.Fatalf("body %+v: want FormInput without error", body)
			}
		}
		total += len(batch.Bodies)
		ack(t, batch, nil)
	}
	for p, n := range counts {
		if got := next[strconv.Itoa(p)]; got != int64(n) {
			t.Errorf("partition %d: read up to offset %d, want %d", p, got, n)
		}
	}
	st := s.Stats()
	if st.Ready != nil || st.Generation <= 0 || len(st.Partitions) != 3 {
		t.Fatalf("stats %+v: want ready, a generation and 3 partitions", st)
	}
	for _, ps := range st.Partitions {
		n := int64(counts[ps.Partition])
		if !ps.Owned || ps.Received != n || ps.ProcessedOffset != n-1 || ps.CommittedOffset != n || ps.HighWatermark != n || ps.Lag != 0 {
			t.Errorf("partition stats %+v: want owned, %d received, committed %d, lag 0", ps, n, n)
		}
	}
}

func TestNextBatchWaitsForAck(t *testing.T) {
	b := broker(t)
	topic := createTopic(t, b, 1)
	produce(t, b, topic, 0, ids("m", 0, 20)...)
	cfg := testConfig(b, uniqueName(t, "group"), topic)
	cfg.Batch.MaxMessages = 5
	s, _ := newSource(t, cfg)

	first := readBatch(t, s, time.Minute)
	if got := bodiesOf([]stream.Batch{first}); strings.Join(got, ",") != strings.Join(ids("m", 0, 5), ",") {
		t.Fatalf("first batch %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	_, err := s.Read(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read while the partition's batch is unacknowledged: %v, want no batch", err)
	}
	ack(t, first, nil)
	second := readBatch(t, s, time.Minute)
	if got := bodiesOf([]stream.Batch{second}); strings.Join(got, ",") != strings.Join(ids("m", 5, 10), ",") {
		t.Fatalf("second batch %v", got)
	}
	ack(t, second, nil)
}

func TestNoCommitBeforeAck(t *testing.T) {
	b := broker(t)
	topic := createTopic(t, b, 1)
	group := uniqueName(t, "group")
	produce(t, b, topic, 0, ids("m", 0, 10)...)
	cfg := testConfig(b, group, topic)

	s1, _ := newSource(t, cfg)
	got := bodiesOf(readN(t, s1, 10, time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := s1.Close(ctx)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "unacknowledged") {
		t.Fatalf("close with a batch out: %v, want an unacknowledged error", err)
	}
	if strings.Join(got, ",") != strings.Join(ids("m", 0, 10), ",") {
		t.Fatalf("first read %v", got)
	}

	// Nothing was acknowledged: the same group reads the same messages again.
	s2, _ := newSource(t, cfg)
	batches := readN(t, s2, 10, time.Minute)
	if again := bodiesOf(batches); strings.Join(again, ",") != strings.Join(got, ",") {
		t.Fatalf("after reopening: %v, want %v again", again, got)
	}
	for _, bt := range batches {
		ack(t, bt, nil)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	if err := s2.Close(ctx); err != nil {
		t.Fatalf("close after acking everything: %v", err)
	}
	cancel()

	// Acknowledged batches are committed: a new member starts after them.
	produce(t, b, topic, 0, ids("n", 0, 5)...)
	s3, _ := newSource(t, cfg)
	batches = readN(t, s3, 5, time.Minute)
	if fresh := bodiesOf(batches); strings.Join(fresh, ",") != strings.Join(ids("n", 0, 5), ",") {
		t.Fatalf("after commit: %v, want only the new messages", fresh)
	}
	if off := batches[0].Bodies[0].Pos.Offset; off != "10" {
		t.Fatalf("first new offset %s, want 10", off)
	}
}

func TestAckWithErrorRedelivers(t *testing.T) {
	b := broker(t)
	topic := createTopic(t, b, 1)
	produce(t, b, topic, 0, ids("m", 0, 10)...)
	cfg := testConfig(b, uniqueName(t, "group"), topic)
	cfg.Batch.MaxMessages = 4
	s, _ := newSource(t, cfg)

	first := readBatch(t, s, time.Minute)
	want := bodiesOf([]stream.Batch{first})
	if strings.Join(want, ",") != strings.Join(ids("m", 0, 4), ",") {
		t.Fatalf("first batch %v", want)
	}
	ack(t, first, errors.New("elasticsearch unavailable"))
	again := readBatch(t, s, time.Minute)
	if got := bodiesOf([]stream.Batch{again}); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after a failed ack: %v, want %v again", got, want)
	}
	if again.Bodies[0].Pos.Offset != "0" {
		t.Fatalf("redelivered from offset %s, want 0", again.Bodies[0].Pos.Offset)
	}
	ack(t, again, nil)
	third := readBatch(t, s, time.Minute)
	if got := bodiesOf([]stream.Batch{third}); strings.Join(got, ",") != strings.Join(ids("m", 4, 8), ",") {
		t.Fatalf("after a good ack: %v", got)
	}
	if err := third.Ack(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := third.Ack(context.Background(), nil); err == nil {
		t.Fatal("second Ack of one batch: want an error")
	}
	ps := s.Stats().Partitions[0]
	if ps.Redelivered != 1 || ps.CommittedOffset != 8 {
		t.Fatalf("stats %+v: want 1 redelivery and committed offset 8", ps)
	}
}

func TestGroupSplitsPartitionsAndTakesOver(t *testing.T) {
	b := broker(t)
	topic := createTopic(t, b, 4)
	group := uniqueName(t, "group")
	var want []string
	produceRound := func(round string) {
		for p := range 4 {
			vals := ids(fmt.Sprintf("%s%d", round, p), 0, 50)
			produce(t, b, topic, p, vals...)
			want = append(want, vals...)
		}
	}
	produceRound("a")
	cfg := testConfig(b, group, topic)
	cfg.Batch.MaxMessages = 20
	sa, _ := newSource(t, cfg)
	ca := consume(sa)
	sb, _ := newSource(t, cfg)
	cb := consume(sb)

	waitFor(t, time.Minute, "both members to own partitions", func() bool {
		na, nb := owned(sa), owned(sb)
		return na >= 1 && nb >= 1 && na+nb == 4
	})
	produceRound("b")
	waitAll(t, want, time.Minute, ca, cb)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err := sa.Close(ctx); err != nil {
		t.Fatalf("close first member: %v", err)
	}
	cancel()
	if err := ca.stop(); err != nil {
		t.Fatalf("first consumer: %v", err)
	}
	waitFor(t, time.Minute, "the remaining member to own all partitions", func() bool { return owned(sb) == 4 })
	produceRound("c")
	waitAll(t, want, time.Minute, ca, cb)
	if err := cb.stop(); err != nil {
		t.Fatalf("second consumer: %v", err)
	}
	// Nothing after the takeover came to the closed member.
	for p := range 4 {
		if ca.has(fmt.Sprintf("c%d-%05d", p, 0)) {
			t.Fatalf("closed member received round c")
		}
	}
	t.Logf("delivered %d bodies for %d ids", ca.total+cb.total, len(want))
}

func TestBrokerRestartMidStream(t *testing.T) {
	b := broker(t)
	topic := createTopic(t, b, 2)
	cfg := testConfig(b, uniqueName(t, "group"), topic)
	cfg.Batch.MaxMessages = 25
	s, logs := newSource(t, cfg)
	// Slow acknowledgements keep batches in flight while the broker goes.
	c := consumeSlowly(s, 200*time.Millisecond)

	var want []string
	for p := range 2 {
		vals := ids(fmt.Sprintf("before%d", p), 0, 100)
		produce(t, b, topic, p, vals...)
		want = append(want, vals...)
	}
	waitFor(t, time.Minute, "the first batch", func() bool { return c.has("before0-00000") || c.has("before1-00000") })

	if err := b.Stop(); err != nil {
		t.Fatalf("stop broker: %v", err)
	}
	waitFor(t, time.Minute, "readiness to report the outage", func() bool { return s.Ready() != nil })
	t.Logf("ready during the outage: %v", s.Ready())
	if err := b.Restart(); err != nil {
		t.Fatalf("restart broker: %v", err)
	}
	for p := range 2 {
		vals := ids(fmt.Sprintf("after%d", p), 0, 100)
		produce(t, b, topic, p, vals...)
		want = append(want, vals...)
	}
	waitAll(t, want, 2*time.Minute, c)
	waitFor(t, time.Minute, "readiness after the restart", func() bool { return s.Ready() == nil })
	if err := c.stop(); err != nil {
		t.Fatalf("consumer: %v", err)
	}
	c.mu.Lock()
	t.Logf("delivered %d bodies for %d ids", c.total, len(want))
	c.mu.Unlock()
	if n := strings.Count(logs.String(), "level=WARN"); n > 6 {
		t.Errorf("%d warnings for one short outage, want at most 6 (rate limited)", n)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n > 0 {
		t.Errorf("%d errors logged for a recoverable outage", n)
	}
}

func TestSASLAndTLSListeners(t *testing.T) {
	b := broker(t)
	topic := createTopic(t, b, 1)
	produce(t, b, topic, 0, ids("m", 0, 20)...)
	cases := []struct {
		name string
		edit func(*Config)
	}{
		{"scram-sha-512", func(c *Config) {
			c.Brokers = []string{b.SASLAddr()}
			c.SASL = kafkaconn.SASLConfig{Mechanism: "scram-sha-512", Username: b.User(), Password: secret.New(b.Password())}
			c.TLS = kafkaconn.TLSConfig{Enabled: true, CAFile: b.CAFile()}
		}},
		{"scram-sha-256", func(c *Config) {
			c.Brokers = []string{b.SASLAddr()}
			c.SASL = kafkaconn.SASLConfig{Mechanism: "scram-sha-256", Username: b.User(), Password: secret.New(b.Password())}
			c.TLS = kafkaconn.TLSConfig{Enabled: true, CAFile: b.CAFile(), ServerName: "localhost"}
		}},
		{"mtls", func(c *Config) {
			c.Brokers = []string{b.MTLSAddr()}
			c.TLS = kafkaconn.TLSConfig{Enabled: true, CAFile: b.CAFile(), CertFile: b.ClientCertFile(), KeyFile: b.ClientKeyFile()}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(b, uniqueName(t, "group"), topic)
			tc.edit(&cfg)
			s, _ := newSource(t, cfg)
			batches := readN(t, s, 20, time.Minute)
			if got := bodiesOf(batches); strings.Join(got, ",") != strings.Join(ids("m", 0, 20), ",") {
				t.Fatalf("read %v", got)
			}
			for _, bt := range batches {
				ack(t, bt, nil)
			}
			if err := s.Ready(); err != nil {
				t.Fatalf("ready: %v", err)
			}
			if ps := s.Stats().Partitions[0]; ps.CommittedOffset != 20 {
				t.Fatalf("committed offset %d, want 20", ps.CommittedOffset)
			}
		})
	}
}

func TestTLSWithoutTrustedCAIsNotReady(t *testing.T) {
	b := broker(t)
	topic := createTopic(t, b, 1)
	cfg := testConfig(b, uniqueName(t, "group"), topic)
	cfg.Brokers = []string{b.SASLAddr()}
	cfg.SASL = kafkaconn.SASLConfig{Mechanism: "scram-sha-512", Username: b.User(), Password: secret.New(b.Password())}
	cfg.TLS = kafkaconn.TLSConfig{Enabled: true} // system pool: the test CA is unknown
	s, _ := newSource(t, cfg)
	waitFor(t, time.Minute, "an error from Ready", func() bool { return s.Ready() != nil && s.Ready() != errStarting })
	if err := s.Ready(); !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("ready: %v, want a certificate error", err)
	}
}

func TestWrongCredentials(t *testing.T) {
	b := broker(t)
	topic := createTopic(t, b, 1)
	produce(t, b, topic, 0, ids("m", 0, 3)...)
	const wrong = "not-the-password-4711"
	cfg := testConfig(b, uniqueName(t, "group"), topic)
	cfg.Brokers = []string{b.SASLAddr()}
	cfg.SASL = kafkaconn.SASLConfig{Mechanism: "scram-sha-512", Username: b.User(), Password: secret.New(wrong)}
	cfg.TLS = kafkaconn.TLSConfig{Enabled: true, CAFile: b.CAFile()}
	s, logs := newSource(t, cfg)

	waitFor(t, time.Minute, "an error from Ready", func() bool { return s.Ready() != nil && s.Ready() != errStarting })
	err := s.Ready()
	if !strings.Contains(err.Error(), "SASL Authentication Failed") || !strings.Contains(err.Error(), "check sasl.mechanism, sasl.username and sasl.password") {
		t.Fatalf("ready: %v, want the authentication failure and a hint", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, rerr := s.Read(ctx)
	cancel()
	if !errors.Is(rerr, context.DeadlineExceeded) {
		t.Fatalf("read with wrong credentials: %v, want nothing", rerr)
	}
	waitFor(t, 10*time.Second, "a warning in the log", func() bool {
		return strings.Contains(logs.String(), "kafka consumer group cannot be joined")
	})
	if strings.Contains(logs.String(), wrong) || strings.Contains(err.Error(), wrong) {
		t.Fatal("the password appears in the log or the readiness error")
	}
	if n := strings.Count(logs.String(), "level=WARN"); n > 2 {
		t.Errorf("%d warnings within seconds, want them rate limited", n)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func TestStartLatestSkipsOldMessages(t *testing.T) {
	b := broker(t)
	topic := createTopic(t, b, 1)
	produce(t, b, topic, 0, ids("old", 0, 5)...)
	cfg := testConfig(b, uniqueName(t, "group"), topic)
	cfg.StartOffset = StartLatest
	s, _ := newSource(t, cfg)
	// The reader resolves "latest" on its first fetch, at a moment the test
	// cannot see: produce new messages until one arrives.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; ; i++ {
		produce(t, b, topic, 0, fmt.Sprintf("new-%05d", i))
		rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		batch, err := s.Read(rctx)
		rcancel()
		if err == nil {
			for _, body := range batch.Bodies {
				if !strings.HasPrefix(string(body.Data), "new-") {
					t.Fatalf("read %q with start_offset = latest", body.Data)
				}
			}
			ack(t, batch, nil)
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("no message with start_offset = latest: %v (ready: %v)", err, s.Ready())
		}
	}
}

func TestCloseWaitsForInFlightAcks(t *testing.T) {
	b := broker(t)
	topic := createTopic(t, b, 1)
	group := uniqueName(t, "group")
	produce(t, b, topic, 0, ids("m", 0, 5)...)
	s, _ := newSource(t, testConfig(b, group, topic))
	batches := readN(t, s, 5, time.Minute)

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		closed <- s.Close(ctx)
	}()
	// Close has begun once Read reports the end.
	waitFor(t, 10*time.Second, "Read to report io.EOF", func() bool {
		_, err := s.Read(context.Background())
		return errors.Is(err, io.EOF)
	})
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with a batch unacknowledged", err)
	default:
	}
	for _, bt := range batches {
		ack(t, bt, nil)
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	if off := committed(t, b, group, topic, 0); off != 5 {
		t.Fatalf("committed offset %d after acking during Close, want 5", off)
	}
}

func TestAckAfterRevocationDoesNotCommit(t *testing.T) {
	b := broker(t)
	topic := createTopic(t, b, 1)
	group := uniqueName(t, "group")
	produce(t, b, topic, 0, ids("m", 0, 5)...)
	cfg := testConfig(b, group, topic)
	cfg.RevokeGrace = 200 * time.Millisecond
	sa, _ := newSource(t, cfg)
	old := readN(t, sa, 5, time.Minute)
	genBefore := sa.Stats().Generation

	// A second member makes the group rebalance; the batch stays out longer
	// than revoke_grace, so the partition is given up without its commit.
	sb, _ := newSource(t, cfg)
	waitFor(t, time.Minute, "the rebalance", func() bool {
		return sa.Stats().Generation > genBefore && sb.Stats().Generation == sa.Stats().Generation &&
			owned(sa)+owned(sb) == 1
	})
	for _, bt := range old {
		ack(t, bt, nil)
	}
	if off := committed(t, b, group, topic, 0); off != -1 {
		t.Fatalf("committed offset %d after a late ack from a finished generation, want none (-1)", off)
	}
	// Whoever owns the partition now reads the batch again.
	ca, cb := consume(sa), consume(sb)
	waitAll(t, ids("m", 0, 5), time.Minute, ca, cb)
	if err := ca.stop(); err != nil {
		t.Fatal(err)
	}
	if err := cb.stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the redelivered batch's commit", func() bool {
		return committed(t, b, group, topic, 0) == 5
	})
}

func TestMissingTopicIsNotReadyUntilCreated(t *testing.T) {
	b := broker(t)
	missing := uniqueName(t, "missing")
	cfg := testConfig(b, uniqueName(t, "group"), missing)
	cfg.PartitionWatchInterval = time.Second
	s, logs := newSource(t, cfg)
	waitFor(t, time.Minute, "an error from Ready", func() bool {
		err := s.Ready()
		return err != nil && strings.Contains(err.Error(), "Unknown Topic Or Partition")
	})
	t.Logf("ready: %v", s.Ready())
	if gen := s.Stats().Generation; gen > 3 {
		t.Fatalf("generation %d: the member keeps rejoining", gen)
	}

	// The topic appears: the group rebalances and reads it.
	c := adminClient(t, b)
	if _, err := c.CreateTopics(context.Background(), &kgo.CreateTopicsRequest{Topics: []kgo.TopicConfig{{
		Topic: missing, NumPartitions: 2, ReplicationFactor: 1,
	}}}); err != nil {
		t.Fatal(err)
	}
	produce(t, b, missing, 1, "late")
	batch := readBatch(t, s, time.Minute)
	if string(batch.Bodies[0].Data) != "late" || batch.Bodies[0].Pos.Partition != "1" {
		t.Fatalf("read %q at %v", batch.Bodies[0].Data, batch.Bodies[0].Pos)
	}
	ack(t, batch, nil)
	waitFor(t, 10*time.Second, "readiness", func() bool { return s.Ready() == nil })
	if n := strings.Count(logs.String(), "level=WARN"); n > 1 {
		t.Errorf("%d warnings, want one (rate limited)", n)
	}
}

func TestStatsLagFollowsTheTopic(t *testing.T) {
	b := broker(t)
	topic := createTopic(t, b, 1)
	produce(t, b, topic, 0, ids("m", 0, 30)...)
	cfg := testConfig(b, uniqueName(t, "group"), topic)
	cfg.Batch.MaxMessages = 10
	s, _ := newSource(t, cfg)

	ack(t, readBatch(t, s, time.Minute), nil)
	held := readBatch(t, s, time.Minute) // offsets 10..19, not acknowledged
	produce(t, b, topic, 0, ids("n", 0, 20)...)
	// 50 messages, 10 processed: the refresh sees the new end while the
	// partition waits for the held batch.
	waitFor(t, 30*time.Second, "lag 40", func() bool {
		ps := s.Stats().Partitions[0]
		return ps.HighWatermark == 50 && ps.Lag == 40
	})
	ps := s.Stats().Partitions[0]
	if ps.ProcessedOffset != 9 || ps.ReceivedOffset != 19 || ps.CommittedOffset != 10 || ps.Received != 20 {
		t.Fatalf("stats %+v: want processed 9, received 19, committed 10, 20 received", ps)
	}
	waitFor(t, 10*time.Second, "a receive rate", func() bool { return s.Stats().Partitions[0].MessagesPerSecond > 0 })
	ack(t, held, nil)
	waitFor(t, 10*time.Second, "lag 30", func() bool { return s.Stats().Partitions[0].Lag == 30 })
}

func TestCheck(t *testing.T) {
	b := broker(t)
	topic := createTopic(t, b, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := testConfig(b, uniqueName(t, "group"), topic)
	cfg.Brokers = []string{b.SASLAddr()}
	cfg.SASL = kafkaconn.SASLConfig{Mechanism: "scram-sha-256", Username: b.User(), Password: secret.New(b.Password())}
	cfg.TLS = kafkaconn.TLSConfig{Enabled: true, CAFile: b.CAFile()}
	// A fresh broker may still be creating its offsets topic.
	var err error
	for {
		if err = Check(ctx, cfg); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	missing := cfg
	missing.Topics = []string{topic, uniqueName(t, "missing")}
	if err := Check(ctx, missing); !errors.Is(err, ErrTopicMissing) {
		t.Fatalf("check with a missing topic: %v", err)
	}
	wrong := cfg
	wrong.SASL.Password = secret.New("wrong-password-0815")
	err = Check(ctx, wrong)
	if err == nil || !strings.Contains(err.Error(), "check sasl.mechanism") || strings.Contains(err.Error(), "wrong-password-0815") {
		t.Fatalf("check with a wrong password: %v", err)
	}
}

// TestNewOnlyBuilds: a source that is built but not started does not join
// its group, so a started member of the same group gets every partition.
func TestNewOnlyBuilds(t *testing.T) {
	b := broker(t)
	topic := createTopic(t, b, 2)
	cfg := testConfig(b, uniqueName(t, "group"), topic)
	logger, _ := testLogger(t)
	idle, err := New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close(context.Background())
	s, _ := newSource(t, cfg)
	produce(t, b, topic, 0, "m0")
	produce(t, b, topic, 1, "m1")
	ack(t, readBatch(t, s, time.Minute), nil)
	ack(t, readBatch(t, s, time.Minute), nil)
	waitFor(t, time.Minute, "the started member to own both partitions", func() bool { return owned(s) == 2 })
	if err := idle.Ready(); err != errStarting {
		t.Fatalf("ready of the source never started: %v, want %v", err, errStarting)
	}
	if _, err := idle.Read(context.Background()); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("read of the source never started: %v, want an error", err)
	}
}

// TestStartContextEndsTheSource: ending the context given to Start stops
// the source: it leaves the group, so that another member reads on from
// the last commit, and Read says the source stopped.
func TestStartContextEndsTheSource(t *testing.T) {
	b := broker(t)
	topic := createTopic(t, b, 1)
	produce(t, b, topic, 0, ids("m", 0, 3)...)
	cfg := testConfig(b, uniqueName(t, "group"), topic)
	logger, _ := testLogger(t)
	s, err := New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, bt := range readN(t, s, 3, time.Minute) {
		ack(t, bt, nil)
	}
	cancel()
	_, rerr := s.Read(context.Background())
	if !errors.Is(rerr, context.Canceled) {
		t.Fatalf("read after the start context ended: %v, want context.Canceled", rerr)
	}
	waitFor(t, 30*time.Second, "the partition to be given up", func() bool { return owned(s) == 0 })
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	if err := s.Close(cctx); err != nil {
		t.Fatalf("close: %v", err)
	}

	next, _ := newSource(t, cfg)
	produce(t, b, topic, 0, "after")
	if got := bodiesOf([]stream.Batch{readBatch(t, next, time.Minute)}); strings.Join(got, ",") != "after" {
		t.Fatalf("the next member read %v, want only what came after the commit", got)
	}
}
