package telemetry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/pipeline"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/elasticsearch"
	"github.com/sspr-exporter/sspr-exporter/internal/source/eventhubs"
	kafkasource "github.com/sspr-exporter/sspr-exporter/internal/source/kafka"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/logging"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/metrics"
)

func TestConfigValidate(t *testing.T) {
	if errs := DefaultConfig().Validate(); len(errs) != 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
	off := DefaultConfig()
	off.Address, off.ReadyStallTimeout, off.LogRepeatInterval = "", 0, 0
	if errs := off.Validate(); len(errs) != 0 {
		t.Fatalf("everything off is valid, got %v", errs)
	}
	bad := Config{Address: "9464", ReadyStallTimeout: -time.Second, ShutdownTimeout: 0, LogRepeatInterval: -1}
	errs := bad.Validate()
	want := []string{"address:", "ready_stall_timeout:", "shutdown_timeout:", "log_repeat_interval:"}
	if len(errs) != len(want) {
		t.Fatalf("got %v, want one error per key %v", errs, want)
	}
	for i, e := range errs {
		if !strings.HasPrefix(e.Error(), want[i]) {
			t.Errorf("error %d %q does not start with %q", i, e, want[i])
		}
	}
	for _, a := range []string{"127.0.0.1:99999", "bad host!:80", "[::1]:x"} {
		c := DefaultConfig()
		c.Address = a
		if errs := c.Validate(); len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "address:") {
			t.Errorf("address %q: %v", a, errs)
		}
	}
	short := DefaultConfig()
	short.ReadyStallTimeout = time.Millisecond
	if errs := short.Validate(); len(errs) != 1 {
		t.Errorf("1ms stall timeout accepted: %v", errs)
	}
}

// memSource hands out its batches once, then io.EOF.
type memSource struct {
	mu      sync.Mutex
	batches [][]stream.Body
	ready   error
}

func (s *memSource) Read(context.Context) (stream.Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.batches) == 0 {
		return stream.Batch{}, io.EOF
	}
	b := s.batches[0]
	s.batches = s.batches[1:]
	return stream.Batch{Bodies: b, Ack: func(context.Context, error) error { return nil }}, nil
}
func (s *memSource) Close(context.Context) error { return nil }
func (s *memSource) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

// memSink stores documents, rejecting those whose action is in reject.
type memSink struct {
	mu     sync.Mutex
	docs   []ecs.Event
	reject string
	ready  error
}

func (s *memSink) Write(_ context.Context, docs []ecs.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rej stream.Rejected
	for i, d := range docs {
		if d.Event.Action == s.reject {
			rej.Docs = append(rej.Docs, stream.Rejection{Index: i, Err: errors.New("mapper_parsing_exception")})
			continue
		}
		s.docs = append(s.docs, d)
	}
	if len(rej.Docs) > 0 {
		rej.Sink = "mem"
		return &rej
	}
	return nil
}
func (s *memSink) Close(context.Context) error { return nil }
func (s *memSink) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// value returns the value of the series of name whose labels include
// want, summed over matching series.
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
	total := 0.0
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWiredPipeline runs a real pipeline over the project's SSPR test data
// with the decorators in place and checks /metrics, /healthz and /readyz
// over HTTP.
func TestWiredPipeline(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "sspr", "eventhub-body-mixed.json"))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger, lh := logging.New(&logs, logging.FormatJSON, slog.LevelDebug, logging.Options{})
	lh.Redactor().Add("es-password-123")

	cfg := DefaultConfig()
	cfg.Address = "127.0.0.1:0"
	tel := New(cfg, logger, lh.Redactor(), metrics.WithoutRuntimeCollectors())

	src := &memSource{batches: [][]stream.Body{
		{{Data: body, Pos: stream.Position{Kind: "eventhubs", Partition: "0"}}},
		{{Data: []byte(`{"records":[{"time":`), Pos: stream.Position{Kind: "eventhubs", Partition: "1"}}, {Data: []byte(`[1,2]`), Pos: stream.Position{Kind: "eventhubs", Partition: "1"}}},
	}}
	sink := &memSink{reject: "password-change"}
	tel.Health.Add("source.eventhubs", src)
	tel.Health.Add("sink.elasticsearch", sink)
	var dlBuf bytes.Buffer
	cat, err := sspr.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.New(
		tel.Metrics.Source(src),
		[]pipeline.NamedSink{{Name: "elasticsearch", Sink: metrics.Sink("elasticsearch", sink, tel.Metrics)}},
		metrics.DeadLetters(deadletter.NewNDJSON(&dlBuf), tel.Metrics),
		pipeline.Options{Decoder: pipeline.Decoder{Catalog: cat, MaxBodyBytes: 1 << 20}, Logger: logger,
			Observe: func(c pipeline.Counts, d time.Duration, err error) { tel.Metrics.BatchDone(BatchCounts(c), d, err) }},
	)

	if err := tel.Server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Server.Shutdown(context.Background()) })
	addr := tel.Server.Addr()

	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	sum := p.Summary()
	if sum.SSPR == 0 || sum.DeadLettered == 0 {
		t.Fatalf("test data gave no documents or no dead letters: %+v", sum)
	}

	mfs := scrape(t, addr)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sspr_exporter_records_total", nil, float64(sum.Records)},
		{"sspr_exporter_documents_total", nil, float64(sum.SSPR)},
		{"sspr_exporter_documents_total", map[string]string{"action": "password-reset"}, float64(sum.ByAction["password-reset"])},
		{"sspr_exporter_documents_by_outcome_total", map[string]string{"outcome": "success"}, float64(sum.ByOutcome["success"])},
		{"sspr_exporter_records_dropped_total", nil, float64(sum.Dropped)},
		{"sspr_exporter_dead_letters_total", nil, float64(sum.DeadLettered)},
		{"sspr_exporter_dead_letters_total", map[string]string{"stage": "sink", "reason": "sink_rejected"}, float64(sum.ByAction["password-change"])},
		{"sspr_exporter_dead_letters_total", map[string]string{"stage": "decode", "reason": "invalid_json"}, 1},
		{"sspr_exporter_dead_letters_total", map[string]string{"stage": "decode", "reason": "not_object"}, 2},
		{"sspr_exporter_sink_documents_total", map[string]string{"sink": "elasticsearch"}, float64(len(sink.docs))},
		{"sspr_exporter_sink_writes_total", map[string]string{"sink": "elasticsearch", "result": "rejected"}, 1},
		{"sspr_exporter_batches_total", map[string]string{"result": "ok"}, 2},
		{"sspr_exporter_batches_in_flight", nil, 0},
		{"sspr_exporter_batch_bodies", nil, 2},
		{"sspr_exporter_ready", nil, 1},
		{"sspr_exporter_component_ready", map[string]string{"component": "pipeline"}, 1},
	}
	for _, c := range checks {
		if got := value(mfs, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	if code, body := get(t, "http://"+addr+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, "http://"+addr+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	sink.mu.Lock()
	sink.ready = errors.New(`elasticsearch: Post "https://elastic:es-password-123@es:9200/_bulk": connection refused`)
	sink.mu.Unlock()
	code, rbody := get(t, "http://"+addr+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(rbody, "sink.elasticsearch: not ready: elasticsearch: Post") || strings.Contains(rbody, "es-password-123") {
		t.Fatalf("/readyz with sink down: %d %q", code, rbody)
	}
	if v := value(scrape(t, addr), "sspr_exporter_component_ready", map[string]string{"component": "sink.elasticsearch"}); v != 0 {
		t.Fatalf("component_ready of the failing sink = %v", v)
	}

	if err := tel.Server.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("server still answers after Shutdown")
	}
}

func TestServerAddressInUse(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Address = "127.0.0.1:0"
	a := New(cfg, nil, nil)
	if err := a.Server.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Server.Shutdown(context.Background())
	cfg.Address = a.Server.Addr()
	b := New(cfg, nil, nil)
	if err := b.Server.Start(); err == nil {
		_ = b.Server.Shutdown(context.Background())
		t.Fatal("second server on the same port started")
	}
	// An empty address serves nothing and stops cleanly.
	cfg.Address = ""
	c := New(cfg, nil, nil)
	if err := c.Server.Start(); err != nil || c.Server.Addr() != "" {
		t.Fatalf("disabled server: %v %q", err, c.Server.Addr())
	}
	if err := c.Server.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type fakeStats eventhubs.Stats

func (f fakeStats) Stats() eventhubs.Stats { return eventhubs.Stats(f) }

func TestEventHubsPartitionsAndStall(t *testing.T) {
	st := fakeStats{Hub: "audit", Partitions: []eventhubs.PartitionStats{
		{ID: "0", Owned: true, Lag: 7, CheckpointAge: 11 * time.Minute},
		{ID: "1", Owned: true, Lag: -1},
		{ID: "2", Owned: false, Lag: 3},
	}}
	cfg := DefaultConfig()
	cfg.Address = "127.0.0.1:0"
	tel := New(cfg, nil, nil, metrics.WithoutRuntimeCollectors())
	tel.Metrics.WatchPartitions("eventhubs", EventHubsPartitions(st))
	if err := tel.Server.Start(); err != nil {
		t.Fatal(err)
	}
	defer tel.Server.Shutdown(context.Background())
	mfs := scrape(t, tel.Server.Addr())
	if v := value(mfs, "sspr_exporter_source_partition_lag", map[string]string{"source": "eventhubs", "topic": "audit", "partition": "0"}); v != 7 {
		t.Errorf("lag of partition 0 = %v", v)
	}
	if v := value(mfs, "sspr_exporter_source_checkpoint_age_seconds", map[string]string{"partition": "0"}); v != 660 {
		t.Errorf("checkpoint age of partition 0 = %v", v)
	}
	if lag, ok := tel.Metrics.TotalLag(); !ok || lag != 7 {
		t.Errorf("TotalLag = %d %v", lag, ok)
	}
}

func TestBatchCounts(t *testing.T) {
	m := metrics.New(metrics.WithoutRuntimeCollectors())
	c := pipeline.Counts{Records: 3, SSPR: 1, Dropped: 2, Unsupported: 1, ByAction: map[string]int64{"password-reset": 1}, ByOutcome: map[string]int64{"success": 1}}
	m.BatchDone(BatchCounts(c), time.Second, nil)
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	if v := value(byName, "sspr_exporter_records_dropped_total", map[string]string{"reason": "unsupported"}); v != 1 {
		t.Fatalf("unsupported = %v", v)
	}
	if v := value(byName, "sspr_exporter_records_total", nil); v != 3 {
		t.Fatalf("records = %v", v)
	}
}

type fakeESStats elasticsearch.Stats

func (f fakeESStats) Stats() elasticsearch.Stats { return elasticsearch.Stats(f) }

func TestElasticsearchStats(t *testing.T) {
	got := ElasticsearchStats(fakeESStats{Created: 5, Duplicates: 2, Retried: 7, BulkRequests: 3, HeldBytes: 99})()
	want := metrics.SinkStats{Retries: 7, Duplicates: 2, Requests: 3, HeldBytes: 99}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

type fakeKafkaStats kafkasource.Stats

func (f fakeKafkaStats) Stats() kafkasource.Stats { return kafkasource.Stats(f) }

func TestKafkaPartitions(t *testing.T) {
	got := KafkaPartitions(fakeKafkaStats{Partitions: []kafkasource.PartitionStats{
		{Topic: "entra-audit", Partition: 2, Owned: true, Lag: 40, CommitAge: time.Minute},
	}})()
	want := []metrics.PartitionStats{{Topic: "entra-audit", ID: "2", Owned: true, Lag: 40, CheckpointAge: time.Minute}}
	if len(got) != 1 || got[0] != want[0] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
