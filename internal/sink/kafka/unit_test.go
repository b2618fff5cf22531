package kafka

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
)

// Vectors printed by Kafka 4.1.2's own Utils.murmur2 and
// Utils.toPositive(h) % 6 (kafka-clients); "21" and "foobar" are also the
// vectors of Kafka's UtilsTest. TestPartitionMatchesJavaClient recomputes
// more of them with the Java client at test time.
var javaVectors = []struct {
	key  string
	hash int32
	p6   int
}{
	{"", 275646681, 3},
	{"a", -1563381124, 4},
	{"ab", 316155434, 2},
	{"abc", 479470107, 3},
	{"abcd", -1323649548, 2},
	{"abcde", 461995741, 1},
	{"21", -973932308, 0},
	{"foobar", -790332482, 0},
	{"3f2504e0-4f89-11d3-9a0c-0305e82c3301", 149263511, 5},
	{"user@contoso.com", -1068323003, 3},
}

// javaChoice is the Java client's default partitioner for a key whose
// murmur2 hash is h: toPositive(h) % n.
func javaChoice(h int32, n int) int { return int(uint32(h)&0x7fffffff) % n }

// partitionIDs returns 0..n-1, the partition list kafka-go hands a balancer.
func partitionIDs(n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	return ids
}

// unconnectedSink is a sink whose brokers do not answer, to look at its
// writers without a broker.
func unconnectedSink(t *testing.T) *Sink {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Brokers = []string{"127.0.0.1:1"}
	cfg.Topic = "partitioner"
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// TestWritersPartitionLikeJava checks the balancer both writers use
// against the Java client's hashes, for every partition count up to 16.
func TestWritersPartitionLikeJava(t *testing.T) {
	s := unconnectedSink(t)
	for _, w := range []*kgo.Writer{s.w, s.single} {
		for _, v := range javaVectors {
			if got, want := javaChoice(v.hash, 6), v.p6; got != want {
				t.Fatalf("vector %q: toPositive(%d) %% 6 = %d, table says %d", v.key, v.hash, got, want)
			}
			for n := 1; n <= 16; n++ {
				if got := w.Balancer.Balance(kgo.Message{Key: []byte(v.key)}, partitionIDs(n)...); got != javaChoice(v.hash, n) {
					t.Errorf("key %q, %d partitions: balancer chose %d, Java client %d", v.key, n, got, javaChoice(v.hash, n))
				}
			}
		}
	}
}

// TestWritersSpreadNullKeys: messages without a key are not all sent to
// one partition.
func TestWritersSpreadNullKeys(t *testing.T) {
	s := unconnectedSink(t)
	for _, w := range []*kgo.Writer{s.w, s.single} {
		seen := map[int]int{}
		// Spread at random: 400 messages miss one of 4 partitions with a
		// probability of about 1e-50.
		for range 400 {
			seen[w.Balancer.Balance(kgo.Message{}, partitionIDs(4)...)]++
		}
		if len(seen) != 4 {
			t.Errorf("null keys went to %v, want all 4 partitions", seen)
		}
	}
}

func TestMessageKey(t *testing.T) {
	ev := makeDocs("k", 1)[0]
	cases := []struct {
		mode string
		mod  func(*ecs.Event)
		want []byte
	}{
		{KeyUser, func(*ecs.Event) {}, []byte("user-0")},
		{KeyUser, func(e *ecs.Event) { e.User.Target.ID = "" }, []byte("actor-0")},
		{KeyUser, func(e *ecs.Event) { e.User.Target.ID, e.User.ID = "", "" }, nil},
		{KeyTenant, func(*ecs.Event) {}, []byte("tenant-0")},
		{KeyTenant, func(e *ecs.Event) { e.Cloud.Account.ID = "" }, nil},
		{KeyNone, func(*ecs.Event) {}, nil},
	}
	for i, c := range cases {
		e := ev
		c.mod(&e)
		if got := messageKey(&e, c.mode); !reflect.DeepEqual(got, c.want) {
			t.Errorf("case %d (%s): key %q, want %q", i, c.mode, got, c.want)
		}
	}
}

func TestEncodeHeadersAndValue(t *testing.T) {
	ev := makeDocs("enc", 1)[0]
	e := encoder{keyMode: KeyTenant}
	ms, errs := e.encodeAll([]ecs.Event{ev})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	m := ms[0]
	if string(m.Key) != "tenant-0" {
		t.Errorf("key %q", m.Key)
	}
	got := map[string]string{}
	for _, h := range m.Headers {
		got[h.Key] = string(h.Value)
	}
	want := map[string]string{"event.id": "enc-00000", "event.action": "Reset password (self-service)",
		"tenant": "tenant-0", "schema": "1.1.0", "content-type": "application/json"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("headers %v, want %v", got, want)
	}
	if string(m.Value) != expectedValue(t, ev) {
		t.Errorf("value %s", m.Value)
	}
	var back ecs.Event
	if err := json.Unmarshal(m.Value, &back); err != nil || !reflect.DeepEqual(back, ev) {
		t.Errorf("value does not round-trip: %v", err)
	}
	if messageSize(&m) < len(m.Value)+len(m.Key) {
		t.Error("messageSize below the payload size")
	}
}

func TestEncodeAllParallelKeepsOrder(t *testing.T) {
	docs := makeDocs("par", parallelEncodeMin*3+7)
	e := encoder{keyMode: KeyUser}
	msgs, errs := e.encodeAll(docs)
	for i := range docs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if string(msgs[i].Value) != expectedValue(t, docs[i]) {
			t.Fatalf("message %d does not hold document %d", i, i)
		}
		if cap(msgs[i].Value) != len(msgs[i].Value) {
			t.Fatalf("message %d value can grow into its neighbour", i)
		}
	}
}

func TestPseudonymizer(t *testing.T) {
	key := []byte("0123456789abcdef")
	p := newPseudonymizer(key)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("user0@contoso.com"))
	if want := hex.EncodeToString(mac.Sum(nil)); p.hash("user0@contoso.com") != want {
		t.Fatalf("hash is not hex HMAC-SHA-256")
	}
	if p.hash("") != "" {
		t.Error("empty value hashed")
	}
	other := newPseudonymizer([]byte("another key 123456"))
	if other.hash("x") == p.hash("x") {
		t.Error("different keys give the same pseudonym")
	}

	ev := makeDocs("ps", 1)[0]
	ev.Event.Original = "raw"
	ev.UserAgent.Original = "Mozilla/5.0"
	ev.Azure.AuditLogs.TargetResources[0].ModifiedProperties = []ecs.ModifiedProperty{{DisplayName: "x"}}
	ev.Source.Geo = ecs.Geo{CityName: "Lyon", CountryISOCode: "FR", CountryName: "France", RegionISOCode: "FR-ARA",
		RegionName: "Auvergne-Rhone-Alpes", Location: &ecs.GeoPoint{Lat: 45.76, Lon: 4.83}}
	ev.Source.AS = ecs.AS{Number: 64500, Organization: ecs.ASOrganization{Name: "Example Net"}}
	orig, _ := json.Marshal(ev)
	c := p.apply(&ev)
	if after, _ := json.Marshal(ev); string(after) != string(orig) {
		t.Fatal("apply modified its input")
	}
	for name, pair := range map[string][2]string{
		"user.id":          {ev.User.ID, c.User.ID},
		"user.name":        {ev.User.Name, c.User.Name},
		"user.target.id":   {ev.User.Target.ID, c.User.Target.ID},
		"user.target.name": {ev.User.Target.Name, c.User.Target.Name},
		"related.user":     {ev.Related.User[0], c.Related.User[0]},
		"related.ip":       {ev.Related.IP[0], c.Related.IP[0]},
		"source.ip":        {ev.Source.IP, c.Source.IP},
		"target.id":        {ev.Azure.AuditLogs.TargetResources[0].ID, c.Azure.AuditLogs.TargetResources[0].ID},
		"target.upn":       {ev.Azure.AuditLogs.TargetResources[0].UserPrincipalName, c.Azure.AuditLogs.TargetResources[0].UserPrincipalName},
		"target.display":   {ev.Azure.AuditLogs.TargetResources[0].DisplayName, c.Azure.AuditLogs.TargetResources[0].DisplayName},
	} {
		if pair[1] != p.hash(pair[0]) {
			t.Errorf("%s: %q, want pseudonym of %q", name, pair[1], pair[0])
		}
	}
	if c.Related.User[0] != c.User.Target.Name {
		t.Error("equal inputs got different pseudonyms")
	}
	if c.Event.Original != "" {
		t.Error("event.original kept in clear")
	}
	if c.UserAgent.Original != "Mozilla/5.0" || c.Cloud.Account.ID != ev.Cloud.Account.ID || c.Event.ID != ev.Event.ID {
		t.Error("non-personal fields changed")
	}
	// The place is dropped; the country and the network stay.
	if want := (ecs.Geo{CountryISOCode: "FR", CountryName: "France"}); c.Source.Geo != want {
		t.Errorf("source.geo = %+v, want only the country %+v", c.Source.Geo, want)
	}
	if c.Source.AS != ev.Source.AS {
		t.Errorf("source.as = %+v, want %+v", c.Source.AS, ev.Source.AS)
	}
}

func TestValidate(t *testing.T) {
	good := DefaultConfig()
	good.Brokers = []string{"127.0.0.1:9092"}
	if errs := good.Validate(); len(errs) != 0 {
		t.Fatalf("default config with a broker: %v", errs)
	}
	if errs := DefaultConfig().Validate(); len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "brokers:") {
		t.Errorf("no brokers: %v", errs)
	}
	bad := good
	bad.Brokers = []string{"nohost"}
	bad.Topic = "bad topic"
	bad.Key = "email"
	bad.RequiredAcks = "two"
	bad.Compression = "brotli"
	bad.Batch.MaxMessages = 0
	bad.Retry.MaxBackoff = time.Millisecond
	bad.SASL = SASLConfig{Mechanism: "plain"}
	bad.TLS.CertFile = "/nonexistent.pem"
	bad.Setup.CleanupPolicy = "forever"
	bad.Pseudonymize.Enabled = true
	errs := bad.Validate()
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	joined := strings.Join(msgs, "\n")
	for _, prefix := range []string{"brokers[0]:", "topic:", "key:", "required_acks:", "compression:",
		"batch.max_messages:", "retry.max_backoff:", "sasl.username:", "sasl.password:", "tls.enabled:",
		"tls.cert_file:", "setup.cleanup_policy:", "pseudonymize.key:"} {
		if !strings.Contains("\n"+joined, "\n"+prefix) {
			t.Errorf("no error starting with %q in:\n%s", prefix, joined)
		}
	}
}
