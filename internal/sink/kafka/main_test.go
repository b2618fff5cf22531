package kafka

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/kafkabroker"
)

// One broker serves every test of the package: starting a JVM is the
// slowest part of these tests.
var (
	shared kafkabroker.Shared
	// brokerMu is held by tests that stop the shared broker, so no other
	// test sees the outage.
	brokerMu sync.Mutex
)

func TestMain(m *testing.M) { os.Exit(shared.Run(m, kafkabroker.Options{})) }

func broker(t testing.TB) *kafkabroker.Broker {
	t.Helper()
	return shared.Get(t)
}

func kcatPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		kafkabroker.Unavailable(t, fmt.Errorf("kcat not on PATH: %w", err))
	}
	return p
}

// testConfig is a plaintext config for the shared broker with a fresh topic.
func testConfig(t testing.TB, b *kafkabroker.Broker, partitions int) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Brokers = []string{b.PlainAddr()}
	cfg.Topic = topicName(t)
	cfg.Setup.Partitions = partitions
	cfg.Setup.ReplicationFactor = 1
	cfg.Retry.MaxBackoff = time.Second
	return cfg
}

var topicSeq struct {
	sync.Mutex
	n int
}

func topicName(t testing.TB) string {
	topicSeq.Lock()
	defer topicSeq.Unlock()
	topicSeq.n++
	name := strings.Map(func(r rune) rune {
		if r == '/' {
			return '.'
		}
		if r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, t.Name())
	return fmt.Sprintf("%s.%d", name, topicSeq.n)
}

func setupTopic(t testing.TB, cfg Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := Setup(ctx, cfg, testLogger(t)); err != nil {
		t.Fatalf("setup topic %s: %v", cfg.Topic, err)
	}
}

func newSink(t testing.TB, cfg Config, logger *slog.Logger) *Sink {
	t.Helper()
	if logger == nil {
		logger = testLogger(t)
	}
	s, err := New(cfg, logger)
	if err != nil {
		t.Fatalf("new sink: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close sink: %v", err)
		}
	})
	return s
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// makeDocs returns n documents with distinct ids, users spread over a few
// tenants, and text that HTML escaping would change.
func makeDocs(prefix string, n int) []ecs.Event {
	docs := make([]ecs.Event, n)
	for i := range docs {
		tenant := fmt.Sprintf("tenant-%d", i%3)
		docs[i] = ecs.Event{
			Timestamp: "2026-11-25T08:00:00.000Z",
			ECS:       ecs.ECSMeta{Version: ecs.Version},
			Event: ecs.EventMeta{
				Kind: "event", Category: []string{"iam"}, Type: []string{"change", "user"},
				Action: "Reset password (self-service)", Outcome: "success",
				ID: fmt.Sprintf("%s-%05d", prefix, i), Dataset: ecs.Dataset,
				Reason: "User <b>reset</b> password & more",
			},
			User: ecs.User{
				ID: fmt.Sprintf("actor-%d", i%7), Name: fmt.Sprintf("actor%d@contoso.com", i%7),
				Target: ecs.TargetUser{ID: fmt.Sprintf("user-%d", i%11), Name: fmt.Sprintf("user%d@contoso.com", i%11)},
			},
			Related: ecs.Related{User: []string{fmt.Sprintf("user%d@contoso.com", i%11)}, IP: []string{"203.0.113.7"}},
			Source:  ecs.Source{IP: "203.0.113.7"},
			Cloud:   ecs.Cloud{Provider: "azure", Account: ecs.CloudAccount{ID: tenant}},
			Azure: ecs.Azure{AuditLogs: ecs.AuditLogs{
				Category: "UserManagement", OperationName: "Reset password (self-service)",
				TargetResources: []ecs.TargetResource{{ID: fmt.Sprintf("user-%d", i%11), Type: "User",
					DisplayName: "Some User", UserPrincipalName: fmt.Sprintf("user%d@contoso.com", i%11)}},
			}},
		}
	}
	return docs
}

// consumed is one message as kcat (librdkafka) saw it.
type consumed struct {
	Partition int32
	Offset    int64
	Key       *string
	Headers   map[string]string
	Value     string
}

// kcatConsume reads the whole topic with kcat over the plaintext listener.
func kcatConsume(t testing.TB, b *kafkabroker.Broker, topic string) []consumed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcatPath(t), "-C", "-b", b.PlainAddr(), "-t", topic,
		"-o", "beginning", "-e", "-q", "-J")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat: %v: %s", err, stderr.String())
	}
	var msgs []consumed
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var m struct {
			Partition int32    `json:"partition"`
			Offset    int64    `json:"offset"`
			Key       *string  `json:"key"`
			Headers   []string `json:"headers"`
			Payload   string   `json:"payload"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("kcat output %q: %v", sc.Text(), err)
		}
		h := map[string]string{}
		for i := 0; i+1 < len(m.Headers); i += 2 {
			if _, dup := h[m.Headers[i]]; dup {
				t.Fatalf("header %q twice in one message", m.Headers[i])
			}
			h[m.Headers[i]] = m.Headers[i+1]
		}
		msgs = append(msgs, consumed{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Headers: h, Value: m.Payload})
	}
	return msgs
}

func secretOf(s string) secret.String { return secret.New(s) }
