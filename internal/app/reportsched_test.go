package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/report"
	"github.com/sspr-exporter/sspr-exporter/internal/report/schedule"
	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/logging"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/telemetrytest"
)

// checkDelivered checks that dir holds the report file and its manifest,
// whose SHA-256 is the report's, and returns the manifest.
func checkDelivered(t *testing.T, dir, file string) report.Manifest {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatalf("report not delivered: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, file+".manifest.json"))
	if err != nil {
		t.Fatalf("manifest not delivered: %v", err)
	}
	var m report.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != m.SHA256 || m.File != file {
		t.Errorf("manifest file %q sha256 %s; want %q and the report's %x", m.File, m.SHA256, file, sum)
	}
	return m
}

// TestRunScheduledReports runs the exporter with a file input and output
// and two scheduled reports: one to a directory, one to a destination that
// cannot be written. Triggered during the run, the first is delivered from
// the output's documents, the second fails, is logged and counted, and
// the pipeline goes on reading.
func TestRunScheduledReports(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.ndjson")
	if err := os.WriteFile(in, []byte(reset("s1", "success")+"\n"+reset("f1", "failure")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	reportsDir := filepath.Join(dir, "reports")
	cfg := config.Default()
	cfg.Input.File.Paths, cfg.Input.File.Follow, cfg.Input.File.PollInterval = []string{in}, true, 20*time.Millisecond
	cfg.Output.File.Path = out
	cfg.DeadLetter.Path = filepath.Join(dir, "dl.ndjson")
	cfg.Reports = config.Reports{
		{Name: "good", Report: "resets", Period: "1000d", Schedule: "@daily", Dir: reportsDir},
		{Name: "bad", Report: "resets", Period: "1000d", Schedule: "@daily", Dir: filepath.Join(blocker, "reports")},
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	var logs syncbuf.Buffer
	logger, lh := logging.New(&logs, logging.FormatJSON, slog.LevelInfo, logging.Options{})
	tel := telemetry.New(telemetry.DefaultConfig(), logger, lh.Redactor())
	ex, err := Build(cfg, Std{}, logger, tel, WithReports())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ex.Run(ctx) }()
	waitLines(t, out, 2)

	ctxT := context.Background()
	if r, err := ex.reports.Trigger(ctxT, "bad"); err != nil || r.Status != schedule.ResultError {
		t.Fatalf("bad report: %+v, %v; want an error", r, err)
	}
	if r, err := ex.reports.Trigger(ctxT, "good"); err != nil || r.Status != schedule.ResultOK {
		t.Fatalf("good report: %+v, %v", r, err)
	}
	entries, _ := os.ReadDir(reportsDir)
	if len(entries) != 2 {
		t.Fatalf("reports dir holds %d files, want the report and its manifest", len(entries))
	}
	name := strings.TrimSuffix(entries[0].Name(), ".manifest.json")
	if !strings.HasPrefix(name, "good-") || !strings.HasSuffix(name, ".csv") {
		t.Errorf("report file %q, want good-DATE.csv", name)
	}
	m := checkDelivered(t, reportsDir, name)
	if m.Rows < 1 || m.Source.Kind != "files" || len(m.Source.Files) != 1 || m.Source.Files[0].Path != out {
		t.Errorf("manifest %+v: want rows from the file output %s", m, out)
	}

	// The failed report stopped nothing: more input is still exported.
	f, err := os.OpenFile(in, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(reset("s2", "success") + "\n")
	_ = f.Close()
	waitLines(t, out, 3)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := ex.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	mfs := telemetrytest.Gather(t, tel.Metrics.Gatherer())
	for _, c := range []struct {
		report, result string
		want           float64
	}{{"good", "ok", 1}, {"bad", "error", 1}, {"bad", "ok", 0}} {
		if got := mfs.Value("sspr_exporter_report_runs_total", map[string]string{"report": c.report, "result": c.result}); got != c.want {
			t.Errorf("report_runs_total{report=%s,result=%s} = %v, want %v", c.report, c.result, got, c.want)
		}
	}
	if mfs.Value("sspr_exporter_report_last_success_timestamp_seconds", map[string]string{"report": "good"}) == 0 {
		t.Error("no last success time for the delivered report")
	}
	if !strings.Contains(logs.String(), `"report failed; it runs again at its next scheduled time"`) || !strings.Contains(logs.String(), `"report":"bad"`) {
		t.Errorf("failure not logged: %s", logs.String())
	}
}

// waitLines waits until path has at least n lines.
func waitLines(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		b, _ := os.ReadFile(path)
		if strings.Count(string(b), "\n") >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never had %d lines: %q", path, n, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReportScheduledCommand: "report --scheduled NAME" runs one entry
// once; its exit status says delivered, failed, or unknown name and
// config problems.
func TestReportScheduledCommand(t *testing.T) {
	dir := t.TempDir()
	store := exportResets(t, dir)
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	delivered := filepath.Join(dir, "delivered")
	cfgPath := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(cfgPath, []byte(`
[output.file]
path = "`+store+`"
[[reports]]
name = "weekly"
report = "resets"
period = "1000d"
schedule = "0 6 * * 1"
file_name = "{name}.{ext}"
format = "json"
dir = "`+delivered+`"
[[reports]]
name = "broken"
report = "resets"
period = "1000d"
schedule = "@daily"
dir = "`+filepath.Join(blocker, "x")+`"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	badCfg := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(badCfg, []byte("[[reports]]\nname = \"weekly\"\nreport = \"nope\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int // 0 delivered, 1 failure, 2 usage
	}{
		{"delivered", []string{"--scheduled", "weekly", "--config", cfgPath}, 0},
		{"destination fails", []string{"--scheduled", "broken", "--config", cfgPath}, 1},
		{"unknown name", []string{"--scheduled", "monthly", "--config", cfgPath}, 2},
		{"config problem", []string{"--scheduled", "weekly", "--config", badCfg}, 2},
		{"no config", []string{"--scheduled", "weekly"}, 2},
		{"other flags", []string{"--scheduled", "weekly", "--config", cfgPath, "--since", "7d"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(config.PathEnv, "")
			var stderr syncbuf.Buffer
			err := Report(context.Background(), tt.args, Std{Out: &syncbuf.Buffer{}, Err: &stderr})
			if got := exitOf(err); got != tt.code {
				t.Fatalf("exit %d (%v), want %d; stderr %s", got, err, tt.code, stderr.String())
			}
			if tt.code == 0 {
				m := checkDelivered(t, delivered, "weekly.json")
				if m.Rows < 1 || m.Report != "resets" {
					t.Errorf("manifest %+v", m)
				}
			}
		})
	}
}

// exportResets exports two SSPR resets with the file input and output
// and returns the output's path.
func exportResets(t *testing.T, dir string) string {
	t.Helper()
	in, out := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.ndjson")
	if err := os.WriteFile(in, []byte(reset("s1", "success")+"\n"+reset("f1", "failure")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Input.File.Paths = []string{in}
	cfg.Output.File.Path = out
	cfg.DeadLetter.Path = filepath.Join(dir, "dl.ndjson")
	tel := telemetry.New(telemetry.DefaultConfig(), discardLogger(), nil)
	ex, err := Build(cfg, Std{}, discardLogger(), tel)
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ex.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return out
}

// exitOf maps a command's error to its exit status as main does.
func exitOf(err error) int {
	var ue *UsageError
	var ee *ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &ee):
		return ee.Code
	}
	return 1
}

// TestReportListsMatch: the config accepts exactly the reports, formats
// and outcomes the generator knows.
func TestReportListsMatch(t *testing.T) {
	if strings.Join(config.ReportNames, ",") != strings.Join(report.Names(), ",") {
		t.Errorf("config.ReportNames %v, report.Names %v", config.ReportNames, report.Names())
	}
	if strings.Join(config.ReportFormats, ",") != strings.Join(report.Formats, ",") {
		t.Errorf("config.ReportFormats %v, report.Formats %v", config.ReportFormats, report.Formats)
	}
	if strings.Join(config.ReportOutcomes, ",") != strings.Join(reportOutcomes, ",") {
		t.Errorf("config.ReportOutcomes %v, --outcome values %v", config.ReportOutcomes, reportOutcomes)
	}
}
