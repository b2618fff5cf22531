package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestReportMetrics: runs are counted by report and result, the last
// success is a Unix time, and an exporter without reports exports none.
func TestReportMetrics(t *testing.T) {
	m := New(withoutRuntimeCollectors())
	if n, err := testutil.GatherAndCount(m.Gatherer(), "sspr_exporter_report_runs_total"); err != nil || n != 0 {
		t.Fatalf("report metrics before any run: %d, %v", n, err)
	}
	m.ReportRun("weekly", "ok")
	m.ReportRun("weekly", "error")
	m.ReportRun("weekly", "error")
	m.ReportRun("daily", "skipped")
	m.ReportSucceeded("weekly", time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC))
	want := `
# HELP sspr_exporter_report_last_success_timestamp_seconds Unix time of each scheduled report's last delivery; alert when it falls behind its schedule.
# TYPE sspr_exporter_report_last_success_timestamp_seconds gauge
sspr_exporter_report_last_success_timestamp_seconds{report="weekly"} 1.7966232e+09
# HELP sspr_exporter_report_runs_total Scheduled report runs, by report and result: ok (delivered), error (failed; tried again at the next scheduled time) or skipped (the previous run had not finished).
# TYPE sspr_exporter_report_runs_total counter
sspr_exporter_report_runs_total{report="daily",result="skipped"} 1
sspr_exporter_report_runs_total{report="weekly",result="error"} 2
sspr_exporter_report_runs_total{report="weekly",result="ok"} 1
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want), "sspr_exporter_report_runs_total", "sspr_exporter_report_last_success_timestamp_seconds"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(m.Gatherer()); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}
