package e2e

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/detect/alertindex"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk/bulktest"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/kafkabroker"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/searchnode"
)

// hook is a TLS webhook endpoint answering 503 to its first request and
// 204 to the others, recording the Idempotency-Key of each.
type hook struct {
	mu   sync.Mutex
	keys []string
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keys = append(h.keys, r.Header.Get("Idempotency-Key"))
	if len(h.keys) == 1 || r.Header.Get("Authorization") != "Bearer hook-token" {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *hook) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.keys)
}

// detectInput writes a password spray (6 users from one address) and 5
// blocked resets of one user, in the hour from 08:00.
func detectInput(t *testing.T, dir string) string {
	at := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	var b []byte
	add := func(id string, t time.Time, action, user, ip string) {
		e := ecs.Event{Event: ecs.EventMeta{ID: id, Action: action, Outcome: "failure", Kind: "event", Dataset: ecs.Dataset}}
		e.ECS.Version, e.Time, e.Timestamp = ecs.Version, t, t.Format(time.RFC3339Nano)
		e.User.Target.Name, e.Source.IP, e.Cloud.Account.ID = user, ip, "00000000-0000-0000-0000-000000000001"
		b = append(e.AppendJSON(b), '\n')
	}
	for i := range 6 {
		add(fmt.Sprintf("spray-%d", i), at.Add(time.Duration(i)*time.Minute), "password-reset", fmt.Sprintf("u%d@contoso.example", i), "192.0.2.7")
	}
	for i := range 5 {
		add(fmt.Sprintf("user-%d", i), at.Add(time.Duration(10+i)*time.Minute), "password-reset-blocked", "noor@contoso.example", "198.51.100.9")
	}
	p := filepath.Join(dir, "events.ndjson")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runDetect(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(exporterBin, append([]string{"detect"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("detect: %v\n%s", err, errOut.String())
	}
	return errOut.String()
}

// TestDetectAlertsOnceAcrossRestarts runs detect twice as separate
// processes against a real Elasticsearch 8.19 node, a real Kafka broker
// and a TLS webhook: the first run stores, produces, posts and writes each
// alert once (the webhook's 503 is retried); the second finds them in the
// alerts index and sends nothing anywhere.
func TestDetectAlertsOnceAcrossRestarts(t *testing.T) {
	node := searchnode.Start(t, searchnode.ES8)
	kb := kafkabroker.Start(t, kafkabroker.Options{})
	dir := t.TempDir()
	input := detectInput(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// setup installs the alerts templates and the alerts topic.
	ix := &alertindex.Index{Client: bulktest.HTTPClient(node.URL()), Red: secret.NewRedactor(), Prefix: "entra-sspr-alerts"}
	if changed, err := ix.Setup(ctx, "elasticsearch", slog.New(slog.DiscardHandler)); err != nil || !changed {
		t.Fatalf("alerts templates: changed %v, %v", changed, err)
	}
	if changed, err := ix.Setup(ctx, "elasticsearch", slog.New(slog.DiscardHandler)); err != nil || changed {
		t.Fatalf("alerts templates again: changed %v, %v", changed, err)
	}
	setupCfg := filepath.Join(dir, "setup.toml")
	os.WriteFile(setupCfg, []byte(fmt.Sprintf(`
[output.file]
enabled = false
[output.kafka]
enabled = true
brokers = [%s]
topic = "events"
setup.partitions = 1
setup.replication_factor = 1
[detect.output]
kafka_topic = "alerts"
[telemetry]
address = ""
`, tomlStr(kb.PlainAddr()))), 0o600)
	if out, err := exec.Command(exporterBin, "setup", "--config", setupCfg).CombinedOutput(); err != nil || !strings.Contains(string(out), "detect: alerts topic alerts ready") {
		t.Fatalf("setup: %v\n%s", err, out)
	}

	h := &hook{}
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	ca := filepath.Join(dir, "hook-ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	alertsFile := filepath.Join(dir, "alerts.ndjson")
	cfg := filepath.Join(dir, "detect.toml")
	os.WriteFile(cfg, []byte(esSection(node, "entra-sspr")+fmt.Sprintf(`
[output.kafka]
enabled = true
brokers = [%s]
topic = "events"
[detect.output]
index = true
kafka_topic = "alerts"
file = %s
[detect.output.webhook]
url = %s
ca_file = %s
bearer_token = "hook-token"
retry.initial_backoff = "10ms"
retry.max_backoff = "10ms"
`, tomlStr(kb.PlainAddr()), tomlStr(alertsFile), tomlStr(srv.URL+"/alerts"), tomlStr(ca))), 0o600)

	args := []string{"--config", cfg, "--until", "2026-11-02T12:00:00Z", "--since", "24h", "--input", input}
	if sum := runDetect(t, args...); !strings.Contains(sum, "2 alerts") || !strings.Contains(sum, "2 new") {
		t.Fatalf("first run: %s", sum)
	}
	first := h.got()
	if len(first) != 3 || first[0] != first[1] || first[1] == first[2] {
		t.Fatalf("webhook keys %v: want a 503 retried, then the other alert", first)
	}
	ids := []string{first[1], first[2]}
	slices.Sort(ids)
	search := es{t, node.URL()}
	exactlyOnce(t, search, "entra-sspr-alerts-*", ids)
	mapping := search.do(http.MethodGet, "/entra-sspr-alerts-2026.11/_mapping/field/source.ip", nil)
	if !strings.Contains(fmt.Sprint(mapping), "type:ip") {
		t.Errorf("source.ip mapping %v: the alerts template did not apply", mapping)
	}
	fileLines := func() int {
		b, _ := os.ReadFile(alertsFile)
		return bytes.Count(b, []byte("\n"))
	}
	if n := fileLines(); n != 2 {
		t.Errorf("%d lines in the alerts file, want 2", n)
	}
	messages := func() int64 {
		conn, err := kgo.DialLeader(ctx, "tcp", kb.PlainAddr(), "alerts", 0)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		last, err := conn.ReadLastOffset()
		if err != nil {
			t.Fatal(err)
		}
		return last
	}
	if n := messages(); n != 2 {
		t.Errorf("%d messages in the alerts topic, want 2", n)
	}

	// A restart: a new process, with nothing in memory, the same range.
	if sum := runDetect(t, args...); !strings.Contains(sum, "2 alerts") || !strings.Contains(sum, "0 new") {
		t.Fatalf("second run: %s", sum)
	}
	if got := h.got(); len(got) != 3 {
		t.Errorf("webhook got %d requests after the restart, want still 3", len(got))
	}
	exactlyOnce(t, search, "entra-sspr-alerts-*", ids)
	if n := fileLines(); n != 2 {
		t.Errorf("%d lines in the alerts file after the restart, want 2", n)
	}
	if n := messages(); n != 2 {
		t.Errorf("%d messages in the alerts topic after the restart, want 2", n)
	}
}
