package app

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/streamtest"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/logging"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/telemetrytest"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/esdouble"
)

// fakeComponents describe src and sink as the configured input and output
// ("eventhubs", "elasticsearch"), with dead letters written to dl.
func fakeComponents(src stream.Source, sink stream.Sink, dl *bytes.Buffer) components {
	return components{
		inputs:  []input{{name: "eventhubs", enabled: true, open: func(Std, *slog.Logger) (stream.Source, error) { return src, nil }}},
		outputs: []output{{name: "elasticsearch", enabled: true, open: func(Std, *slog.Logger) (stream.Sink, error) { return sink, nil }}},
		deadLetters: []deadLetterOutput{{key: "dead_letter", enabled: true, open: func(Std, *slog.Logger) (deadletter.Writer, func(context.Context) error, error) {
			return deadletter.NewNDJSON(dl), func(context.Context) error { return nil }, nil
		}}},
	}
}

// TestWiredPipeline runs the wiring over the project's SSPR test data,
// with a fake source and sink in place of the configured ones, and checks
// /metrics, /healthz and /readyz over HTTP.
func TestWiredPipeline(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "sspr", "eventhub-body-mixed.json"))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger, lh := logging.New(&logs, logging.FormatJSON, slog.LevelDebug, logging.Options{})
	lh.Redactor().Add("es-password-123")

	tcfg := telemetry.DefaultConfig()
	tcfg.Address = "127.0.0.1:0"
	tel := telemetry.New(tcfg, logger, lh.Redactor())

	src := streamtest.NewSource(
		streamtest.Bodies(stream.Position{Kind: "eventhubs", Partition: "0"}, string(body)),
		streamtest.Bodies(stream.Position{Kind: "eventhubs", Partition: "1"}, `{"records":[{"time":`, `[1,2]`),
	)
	sink := &streamtest.Sink{Name: "mem", Reject: func(d ecs.Event) error {
		if d.Event.Action == "password-change" {
			return errors.New("mapper_parsing_exception")
		}
		return nil
	}}
	var dlBuf bytes.Buffer
	ex, err := build(config.Default(), fakeComponents(src, sink, &dlBuf), Std{}, logger, tel)
	if err != nil {
		t.Fatal(err)
	}

	if err := tel.Server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Server.Shutdown(context.Background()) })
	addr := tel.Server.Addr()

	if err := ex.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ex.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	sum := ex.Pipeline.Summary()
	if sum.SSPR == 0 || sum.DeadLettered == 0 {
		t.Fatalf("test data gave no documents or no dead letters: %+v", sum)
	}

	mfs := telemetrytest.Scrape(t, addr)
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
		{"sspr_exporter_sink_documents_total", map[string]string{"sink": "elasticsearch"}, float64(len(sink.Docs()))},
		{"sspr_exporter_sink_writes_total", map[string]string{"sink": "elasticsearch", "result": "rejected"}, 1},
		{"sspr_exporter_batches_total", map[string]string{"result": "ok"}, 2},
		{"sspr_exporter_batches_in_flight", nil, 0},
		{"sspr_exporter_batch_bodies", nil, 2},
		{"sspr_exporter_ready", nil, 1},
		{"sspr_exporter_component_ready", map[string]string{"component": "pipeline"}, 1},
	}
	for _, c := range checks {
		if got := mfs.Value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	if code, body := telemetrytest.Get(t, "http://"+addr+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := telemetrytest.Get(t, "http://"+addr+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	sink.SetReady(errors.New(`elasticsearch: Post "https://elastic:es-password-123@es:9200/_bulk": connection refused`))
	code, rbody := telemetrytest.Get(t, "http://"+addr+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(rbody, "sink.elasticsearch: not ready: elasticsearch: Post") || strings.Contains(rbody, "es-password-123") {
		t.Fatalf("/readyz with sink down: %d %q", code, rbody)
	}
	if v := telemetrytest.Scrape(t, addr).Value("sspr_exporter_component_ready", map[string]string{"component": "sink.elasticsearch"}); v != 0 {
		t.Fatalf("component_ready of the failing sink = %v", v)
	}
	src.SetReady(errors.New("hub unreachable"))
	if v := telemetrytest.Scrape(t, addr).Value("sspr_exporter_component_ready", map[string]string{"component": "source.eventhubs"}); v != 0 {
		t.Fatalf("component_ready of the failing source = %v", v)
	}

	if err := tel.Server.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("server still answers after Shutdown")
	}
}

// TestBuildRunsConfiguredPipeline runs the exporter that Build wires from a
// config file: a file input, the file output and an Elasticsearch output
// (the double), dead letters to a file. Every record ends as a document in
// both outputs, a counted drop or a dead letter, and the telemetry sees
// every component.
func TestBuildRunsConfiguredPipeline(t *testing.T) {
	es := esdouble.New()
	defer es.Close()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.json")
	lines := []string{
		`{"records":[` + reset("s1", "success") + `,` + other("o1") + `]}`,
		reset("f1", "failure"),
		"not json at all",
	}
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, dl := filepath.Join(dir, "out.ndjson"), filepath.Join(dir, "dl.ndjson")
	path := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(path, []byte(`
[input.file]
paths = ["`+in+`"]
[output.file]
path = "`+out+`"
[output.elasticsearch]
enabled = true
addresses = ["`+es.URL()+`"]
api_key = "build-test-key-0451"
[dead_letter]
path = "`+dl+`"
[telemetry]
address = ""
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger, _ := Logger(cfg, &logs)
	tel := telemetry.New(cfg.Telemetry, logger, nil)
	ex, err := Build(cfg, Std{In: strings.NewReader("")}, logger, tel)
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Run(context.Background()); err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := ex.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}

	sum := ex.Pipeline.Summary()
	if sum.Records != 3 || sum.SSPR != 2 || sum.Dropped != 1 || sum.DeadLettered != 1 || sum.ByOutcome["failure"] != 1 {
		t.Errorf("summary %+v", sum)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for l := range strings.Lines(string(data)) {
		for _, id := range []string{"s1", "f1"} {
			if strings.Contains(l, `"id":"`+id+`"`) {
				ids = append(ids, id)
			}
		}
	}
	if slices.Sort(ids); strings.Join(ids, ",") != "f1,s1" {
		t.Errorf("file output: ids %v in %s", ids, data)
	}
	if n := es.Count("entra-sspr-*"); n != 2 {
		t.Errorf("%d documents in Elasticsearch, want 2 (indices %v)", n, es.Indices())
	}
	dls, err := os.ReadFile(dl)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := deadletter.Parse(bytes.TrimSpace(dls)); !ok || r.Reason != deadletter.ReasonInvalidJSON || r.Source.File != in || r.Source.Line != 3 {
		t.Errorf("dead letters: %s", dls)
	}

	byName := telemetrytest.Gather(t, tel.Metrics.Gatherer())
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sspr_exporter_records_total", nil, 3},
		{"sspr_exporter_sink_documents_total", map[string]string{"sink": "file"}, 2},
		{"sspr_exporter_sink_documents_total", map[string]string{"sink": "elasticsearch"}, 2},
		{"sspr_exporter_dead_letters_total", map[string]string{"stage": "decode", "reason": "invalid_json"}, 1},
	} {
		if got := byName.Value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The Elasticsearch sink's own counters reach the metrics.
	if got := byName.Value("sspr_exporter_sink_requests_total", map[string]string{"sink": "elasticsearch"}); got < 1 {
		t.Errorf("sink_requests_total{sink=elasticsearch} = %v", got)
	}
	var components []string
	for _, c := range tel.Health.Check().Components {
		components = append(components, c.Name)
	}
	for _, want := range []string{"sink.file", "sink.elasticsearch"} {
		if !slices.Contains(components, want) {
			t.Errorf("readiness of %s not registered: %v", want, components)
		}
	}
	if strings.Contains(logs.String(), "build-test-key-0451") {
		t.Error("the API key appeared in the log")
	}
}
