package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/kafkabroker"
)

// expectedValue is json.Marshal's output with its HTML escapes undone: the
// sink must emit exactly that.
func expectedValue(t testing.TB, ev ecs.Event) string {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(b))
}

func writeAll(t testing.TB, s *Sink, docs []ecs.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Write(ctx, docs); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// TestCodecsKeysHeadersValues produces with every codec and reads the topic
// back with kcat, an independent client: keys, headers and values must be
// exactly what the contract in docs/kafka.md says.
func TestCodecsKeysHeadersValues(t *testing.T) {
	b := broker(t)
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			cfg := testConfig(t, b, 3)
			cfg.Compression = codec
			setupTopic(t, cfg)
			s := newSink(t, cfg, nil)
			docs := makeDocs(codec, 40)
			docs[5].Cloud.Account.ID = "" // no tenant: no tenant header
			writeAll(t, s, docs[:25])
			writeAll(t, s, docs[25:])

			got := kcatConsume(t, b, cfg.Topic)
			if len(got) != len(docs) {
				t.Fatalf("kcat read %d messages, want %d", len(got), len(docs))
			}
			byID := map[string]consumed{}
			for _, m := range got {
				byID[m.Headers[HeaderEventID]] = m
			}
			for _, d := range docs {
				m, ok := byID[d.Event.ID]
				if !ok {
					t.Fatalf("event %s not consumed", d.Event.ID)
				}
				if m.Key == nil || *m.Key != d.User.Target.ID {
					t.Errorf("event %s: key %v, want %q", d.Event.ID, m.Key, d.User.Target.ID)
				}
				want := map[string]string{
					HeaderEventID: d.Event.ID, HeaderEventAction: d.Event.Action,
					HeaderSchema: SchemaVersion, HeaderContentType: "application/json",
				}
				if d.Cloud.Account.ID != "" {
					want[HeaderTenant] = d.Cloud.Account.ID
				}
				if !reflect.DeepEqual(m.Headers, want) {
					t.Errorf("event %s: headers %v, want %v", d.Event.ID, m.Headers, want)
				}
				if wantV := expectedValue(t, d); m.Value != wantV {
					t.Errorf("event %s: value\n%s\nwant\n%s", d.Event.ID, m.Value, wantV)
				}
				if !strings.Contains(m.Value, "User <b>reset</b> password & more") {
					t.Errorf("event %s: value is HTML-escaped: %s", d.Event.ID, m.Value)
				}
				if want := s.w.Balancer.Balance(kgo.Message{Key: []byte(d.User.Target.ID)}, partitionIDs(3)...); int(m.Partition) != want {
					t.Errorf("event %s: partition %d, want %d", d.Event.ID, m.Partition, want)
				}
			}
		})
	}
}

// javaPartitions runs Kafka's own Utils.murmur2 (kafka-clients) on keys and
// returns the raw hash and the default partitioner's choice for n partitions.
func javaPartitions(t *testing.T, n int, keys []string) (hashes []int32, parts []int) {
	t.Helper()
	cp, err := kafkabroker.Classpath()
	if err != nil {
		kafkabroker.Unavailable(t, err)
	}
	java, err := kafkabroker.Java()
	if err != nil {
		kafkabroker.Unavailable(t, err)
	}
	src := filepath.Join(t.TempDir(), "Murmur.java")
	prog := `import org.apache.kafka.common.utils.Utils;
import java.nio.charset.StandardCharsets;
public class Murmur {
  public static void main(String[] args) {
    int n = Integer.parseInt(args[0]);
    for (int i = 1; i < args.length; i++) {
      byte[] k = args[i].getBytes(StandardCharsets.UTF_8);
      int h = Utils.murmur2(k);
      System.out.println(h + " " + (Utils.toPositive(h) % n));
    }
  }
}
`
	if err := os.WriteFile(src, []byte(prog), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-cp", cp, src, strconv.Itoa(n)}, keys...)
	out, err := exec.Command(java, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("java: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(keys) {
		t.Fatalf("java printed %d lines for %d keys: %s", len(lines), len(keys), out)
	}
	for _, l := range lines {
		var h int32
		var p int
		if _, err := fmt.Sscanf(l, "%d %d", &h, &p); err != nil {
			t.Fatalf("java output %q: %v", l, err)
		}
		hashes, parts = append(hashes, h), append(parts, p)
	}
	return hashes, parts
}

// TestPartitionMatchesJavaClient compares the partitioner with the Java
// client's own code, then checks the broker stored each key there.
func TestPartitionMatchesJavaClient(t *testing.T) {
	b := broker(t)
	const n = 7
	keys := []string{"", "a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg",
		"3f2504e0-4f89-11d3-9a0c-0305e82c3301", "user-1", "ünïcødé-用户", "00000000-0000-0000-0000-000000000000"}
	for i := range 30 {
		keys = append(keys, fmt.Sprintf("c0ffee%02d-aaaa-4bbb-8ccc-%012d", i, i*7919))
	}
	hashes, parts := javaPartitions(t, n, keys)
	cfg := testConfig(t, b, n)
	setupTopic(t, cfg)
	s := newSink(t, cfg, nil)
	for i, k := range keys {
		if got := javaChoice(hashes[i], n); got != parts[i] {
			t.Fatalf("key %q: toPositive(%d) %% %d = %d, Java printed %d", k, hashes[i], n, got, parts[i])
		}
		if got := s.w.Balancer.Balance(kgo.Message{Key: []byte(k)}, partitionIDs(n)...); got != parts[i] {
			t.Errorf("key %q: balancer chose %d, Java client %d", k, got, parts[i])
		}
	}
	var docs []ecs.Event
	want := map[string]int{}
	for i, k := range keys[1:] { // the empty key is a null key on the wire
		d := makeDocs("p", 1)[0]
		d.Event.ID = fmt.Sprintf("p-%d", i)
		d.User.Target.ID = k
		docs = append(docs, d)
		want[d.Event.ID] = parts[i+1]
	}
	writeAll(t, s, docs)
	for _, m := range kcatConsume(t, b, cfg.Topic) {
		id := m.Headers[HeaderEventID]
		if int(m.Partition) != want[id] {
			t.Errorf("event %s (key %v) on partition %d, Java client would use %d", id, *m.Key, m.Partition, want[id])
		}
		delete(want, id)
	}
	if len(want) > 0 {
		t.Errorf("not consumed: %v", want)
	}
}

// TestBrokerOutageLosesNothing stops the broker for a few seconds while
// batches are being written: Write must wait and retry, and every document
// must be in the topic afterwards.
func TestBrokerOutageLosesNothing(t *testing.T) {
	b := broker(t)
	brokerMu.Lock()
	defer brokerMu.Unlock()
	cfg := testConfig(t, b, 2)
	cfg.DialTimeout = 2 * time.Second
	cfg.WriteTimeout = 3 * time.Second
	cfg.Retry.InitialBackoff = 50 * time.Millisecond
	cfg.Retry.MaxBackoff = 500 * time.Millisecond
	setupTopic(t, cfg)
	s := newSink(t, cfg, nil)

	docs := makeDocs("outage", 3000)
	const batch = 50
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	written := make(chan int, len(docs)/batch)
	errc := make(chan error, 1)
	go func() {
		for i := 0; i < len(docs); i += batch {
			if err := s.Write(ctx, docs[i:i+batch]); err != nil {
				errc <- fmt.Errorf("batch at %d: %w", i, err)
				return
			}
			written <- i
			time.Sleep(5 * time.Millisecond)
		}
		errc <- nil
	}()

	// Let some batches through, then take the broker away mid-stream.
	for range 5 {
		select {
		case <-written:
		case err := <-errc:
			t.Fatalf("writer ended before the outage: %v", err)
		}
	}
	if err := b.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	notReady := s.Ready()
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write across the outage: %v", err)
	}
	if notReady == nil {
		t.Error("Ready() was nil while the broker was down")
	}
	if err := s.Ready(); err != nil {
		t.Errorf("Ready() after recovery: %v", err)
	}

	got := kcatConsume(t, b, cfg.Topic)
	seen := map[string]int{}
	for _, m := range got {
		seen[m.Headers[HeaderEventID]]++
	}
	for _, d := range docs {
		if seen[d.Event.ID] == 0 {
			t.Errorf("event %s lost", d.Event.ID)
		}
	}
	t.Logf("%d documents, %d messages consumed (%d duplicates from retries)", len(docs), len(got), len(got)-len(seen))
	if len(seen) != len(docs) {
		t.Errorf("consumed %d distinct ids, want %d", len(seen), len(docs))
	}
}

func saslConfig(t testing.TB, b *kafkabroker.Broker, mech, password string) Config {
	cfg := testConfig(t, b, 1)
	cfg.Brokers = []string{b.SASLAddr()}
	cfg.SASL = SASLConfig{Mechanism: mech, Username: b.User(), Password: secretOf(password)}
	cfg.TLS = TLSConfig{Enabled: true, CAFile: b.CAFile()}
	return cfg
}

// TestWrongCredentials: a failed SCRAM login is stream-wide. Write must keep
// retrying without rejecting anything, Ready must say why, and the error is
// logged once (the interval is long).
func TestWrongCredentials(t *testing.T) {
	b := broker(t)
	good := saslConfig(t, b, "scram-sha-512", b.Password())
	setupTopic(t, good)

	cfg := good
	cfg.SASL.Password = secretOf("not-the-password")
	cfg.ErrorLogInterval = time.Hour
	cfg.Retry.InitialBackoff = 20 * time.Millisecond
	cfg.Retry.MaxBackoff = 200 * time.Millisecond
	var logs syncbuf.Buffer
	s := newSink(t, cfg, slog.New(slog.NewJSONHandler(&logs, nil)))

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	err := s.Write(ctx, makeDocs("badauth", 3))
	if err == nil {
		t.Fatal("write with a wrong password succeeded")
	}
	if _, ok := stream.AsRejected(err); ok {
		t.Fatalf("wrong credentials rejected documents: %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("write error %v, want the context's deadline", err)
	}
	rerr := s.Ready()
	if rerr == nil || !errors.Is(rerr, kgo.SASLAuthenticationFailed) || !strings.Contains(rerr.Error(), "sasl.password") {
		t.Errorf("Ready() = %v, want the SASL authentication failure with a hint", rerr)
	}
	var errorLines int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) {
			errorLines++
			if !strings.Contains(line, "authentication") {
				t.Errorf("error log does not say authentication: %s", line)
			}
		}
	}
	if errorLines != 1 {
		t.Errorf("%d error log lines, want exactly 1:\n%s", errorLines, logs.String())
	}
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	serr := Setup(sctx, cfg, testLogger(t))
	if !errors.Is(serr, kgo.SASLAuthenticationFailed) {
		t.Errorf("Setup with a wrong password: %v, want the SASL authentication failure", serr)
	}
	if strings.Contains(logs.String(), "not-the-password") || strings.Contains(rerr.Error(), "not-the-password") || strings.Contains(fmt.Sprint(serr), "not-the-password") {
		t.Error("the password leaked into logs or errors")
	}
}

// TestSASLSSL writes over the SASL_SSL listener with both SCRAM variants and
// PLAIN and the test CA, and over the mutual-TLS listener with a client certificate.
func TestSASLSSL(t *testing.T) {
	b := broker(t)
	cases := map[string]func(t *testing.T) Config{
		"scram-sha-512": func(t *testing.T) Config { return saslConfig(t, b, "scram-sha-512", b.Password()) },
		"scram-sha-256": func(t *testing.T) Config { return saslConfig(t, b, "scram-sha-256", b.Password()) },
		// PLAIN over TLS is what the Event Hubs Kafka endpoint speaks.
		"plain": func(t *testing.T) Config { return saslConfig(t, b, "plain", b.Password()) },
		"mtls": func(t *testing.T) Config {
			cfg := testConfig(t, b, 1)
			cfg.Brokers = []string{b.MTLSAddr()}
			cfg.TLS = TLSConfig{Enabled: true, CAFile: b.CAFile(), CertFile: b.ClientCertFile(), KeyFile: b.ClientKeyFile()}
			return cfg
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := mk(t)
			setupTopic(t, cfg)
			s := newSink(t, cfg, nil)
			docs := makeDocs(name, 5)
			writeAll(t, s, docs)
			if err := s.Ready(); err != nil {
				t.Errorf("Ready() after a write: %v", err)
			}
			if got := kcatConsume(t, b, cfg.Topic); len(got) != len(docs) {
				t.Errorf("consumed %d, want %d", len(got), len(docs))
			}
		})
	}
	t.Run("untrusted-ca", func(t *testing.T) {
		cfg := saslConfig(t, b, "scram-sha-512", b.Password())
		cfg.TLS.CAFile = "" // system roots do not know the test CA
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := Check(ctx, cfg); err == nil {
			t.Fatal("TLS verification passed without the test CA")
		}
	})
}

// TestOversizeRejectsOnlyThatDocument: one document above the topic's
// max.message.bytes and one above the sink's max_message_bytes are rejected;
// their neighbours in the same batch are stored.
func TestOversizeRejectsOnlyThatDocument(t *testing.T) {
	b := broker(t)
	cfg := testConfig(t, b, 1)
	cfg.Setup.MaxMessageBytes = 20_000
	cfg.MaxMessageBytes = 200_000
	setupTopic(t, cfg)
	s := newSink(t, cfg, nil)

	docs := makeDocs("big", 6)
	docs[1].Event.Original = strings.Repeat("x", 50_000)  // broker refuses
	docs[4].Event.Original = strings.Repeat("y", 300_000) // sink refuses
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := s.Write(ctx, docs)
	rej, ok := stream.AsRejected(err)
	if !ok {
		t.Fatalf("write: %v, want *stream.Rejected", err)
	}
	var idx []int
	for _, r := range rej.Docs {
		idx = append(idx, r.Index)
		if !errors.Is(r.Err, ErrTooLarge) {
			t.Errorf("rejection %d: %v, want ErrTooLarge", r.Index, r.Err)
		}
	}
	if !reflect.DeepEqual(idx, []int{1, 4}) {
		t.Fatalf("rejected %v, want [1 4]", idx)
	}
	got := kcatConsume(t, b, cfg.Topic)
	var ids []string
	for _, m := range got {
		ids = append(ids, m.Headers[HeaderEventID])
	}
	want := []string{"big-00000", "big-00002", "big-00003", "big-00005"}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("consumed %v, want %v", ids, want)
	}
	if err := s.Ready(); err != nil {
		t.Errorf("a rejection made the sink not ready: %v", err)
	}
}

// TestTopicAuthorizationFailed: a principal denied WRITE must not get
// documents rejected; Ready reports the authorization failure.
func TestTopicAuthorizationFailed(t *testing.T) {
	b := broker(t)
	cfg := saslConfig(t, b, "scram-sha-256", b.Password())
	setupTopic(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := &kgo.Client{Addr: kgo.TCP(b.PlainAddr()), Timeout: 10 * time.Second}
	acl := func(op kgo.ACLOperationType, perm kgo.ACLPermissionType) kgo.ACLEntry {
		return kgo.ACLEntry{ResourceType: kgo.ResourceTypeTopic, ResourceName: cfg.Topic, ResourcePatternType: kgo.PatternTypeLiteral,
			Principal: "User:" + b.User(), Host: "*", Operation: op, PermissionType: perm}
	}
	// DESCRIBE stays allowed, so the broker answers the produce request with
	// TOPIC_AUTHORIZATION_FAILED rather than hiding the topic.
	res, err := admin.CreateACLs(ctx, &kgo.CreateACLsRequest{ACLs: []kgo.ACLEntry{
		acl(kgo.ACLOperationTypeDescribe, kgo.ACLPermissionTypeAllow),
		acl(kgo.ACLOperationTypeWrite, kgo.ACLPermissionTypeDeny),
	}})
	if err != nil || len(res.Errors) != 2 || res.Errors[0] != nil || res.Errors[1] != nil {
		t.Fatalf("create deny ACL: %v %v", err, res)
	}
	cfg.Retry.InitialBackoff = 20 * time.Millisecond
	cfg.Retry.MaxBackoff = 200 * time.Millisecond
	s := newSink(t, cfg, nil)
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
	defer wcancel()
	err = s.Write(wctx, makeDocs("denied", 2))
	if err == nil {
		t.Fatal("write to a denied topic succeeded")
	}
	if _, ok := stream.AsRejected(err); ok {
		t.Fatalf("authorization failure rejected documents: %v", err)
	}
	if rerr := s.Ready(); !errors.Is(rerr, kgo.TopicAuthorizationFailed) {
		t.Errorf("Ready() = %v, want TopicAuthorizationFailed", rerr)
	}
}

// TestSetupAndCheck: Check explains a missing topic, Setup creates it with
// the configured settings, and a second Setup is harmless.
func TestSetupAndCheck(t *testing.T) {
	b := broker(t)
	cfg := testConfig(t, b, 3)
	cfg.Setup.Retention = time.Hour
	cfg.Setup.CleanupPolicy = "compact,delete"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	err := Check(ctx, cfg)
	if !errors.Is(err, ErrTopicMissing) || !strings.Contains(err.Error(), "setup.create_topic") {
		t.Fatalf("Check on a missing topic: %v", err)
	}
	off := cfg
	off.Setup.CreateTopic = false
	if err := Setup(ctx, off, testLogger(t)); !errors.Is(err, ErrTopicMissing) {
		t.Fatalf("Setup with create_topic=false on a missing topic: %v", err)
	}
	for range 2 {
		if err := Setup(ctx, cfg, testLogger(t)); err != nil {
			t.Fatalf("Setup: %v", err)
		}
	}
	if err := Check(ctx, cfg); err != nil {
		t.Fatalf("Check after Setup: %v", err)
	}
	// A fresh transport: kafka-go answers metadata from a per-transport cache.
	admin := &kgo.Client{Addr: kgo.TCP(b.PlainAddr()), Timeout: 10 * time.Second, Transport: &kgo.Transport{}}
	md, err := admin.Metadata(ctx, &kgo.MetadataRequest{Topics: []string{cfg.Topic}})
	if err != nil || len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 3 {
		t.Fatalf("metadata: %v %+v", err, md)
	}
	dc, err := admin.DescribeConfigs(ctx, &kgo.DescribeConfigsRequest{Resources: []kgo.DescribeConfigRequestResource{{
		ResourceType: kgo.ResourceTypeTopic, ResourceName: cfg.Topic, ConfigNames: []string{"retention.ms", "cleanup.policy"}}}})
	if err != nil || len(dc.Resources) != 1 {
		t.Fatalf("describe configs: %v", err)
	}
	got := map[string]string{}
	for _, e := range dc.Resources[0].ConfigEntries {
		got[e.ConfigName] = e.ConfigValue
	}
	if got["retention.ms"] != "3600000" || got["cleanup.policy"] != "compact,delete" {
		t.Errorf("topic configs %v", got)
	}
}

// TestPseudonymizedCopy: with pseudonymisation on, the consumed message has
// no clear personal value and a pseudonymised key, and the caller's
// documents are unchanged.
func TestPseudonymizedCopy(t *testing.T) {
	b := broker(t)
	cfg := testConfig(t, b, 1)
	cfg.Pseudonymize = PseudonymizeConfig{Enabled: true, Key: secretOf("0123456789abcdef-test-key")}
	setupTopic(t, cfg)
	s := newSink(t, cfg, nil)
	docs := makeDocs("pseudo", 3)
	docs[0].Event.Original = `{"userPrincipalName":"user0@contoso.com"}`
	before, _ := json.Marshal(docs)
	writeAll(t, s, docs)
	after, _ := json.Marshal(docs)
	if !bytes.Equal(before, after) {
		t.Fatal("Write changed the caller's documents")
	}
	p := newPseudonymizer([]byte("0123456789abcdef-test-key"))
	for i, m := range kcatConsume(t, b, cfg.Topic) {
		if strings.Contains(m.Value, "contoso.com") || strings.Contains(m.Value, "203.0.113.7") || strings.Contains(m.Value, "actor-") {
			t.Errorf("message %d carries personal data in clear: %s", i, m.Value)
		}
		if m.Key == nil || *m.Key != p.hash(docs[i].User.Target.ID) {
			t.Errorf("message %d key %v, want the pseudonym of %q", i, m.Key, docs[i].User.Target.ID)
		}
		if m.Headers[HeaderEventID] != docs[i].Event.ID {
			t.Errorf("message %d: event.id header %q changed", i, m.Headers[HeaderEventID])
		}
	}
}
