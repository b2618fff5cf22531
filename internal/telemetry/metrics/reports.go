package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// reportMetrics are the scheduled reports' metrics, registered on first
// use so that an exporter without [[reports]] exports none.
type reportMetrics struct {
	once        sync.Once
	runs        *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
}

func (m *Metrics) reports() *reportMetrics {
	r := &m.reportM
	r.once.Do(func() {
		f := factory{m.reg}
		r.runs = f.counterVec("report_runs_total", "Scheduled report runs, by report and result: ok (delivered), error (failed; tried again at the next scheduled time) or skipped (the previous run had not finished).", "report", "result")
		r.lastSuccess = f.gaugeVec("report_last_success_timestamp_seconds", "Unix time of each scheduled report's last delivery; alert when it falls behind its schedule.", "report")
	})
	return r
}

// ReportRun counts one run of a scheduled report with its result.
func (m *Metrics) ReportRun(report, result string) {
	m.reports().runs.WithLabelValues(report, result).Inc()
}

// ReportSucceeded records when a scheduled report was last delivered.
func (m *Metrics) ReportSucceeded(report string, at time.Time) {
	m.reports().lastSuccess.WithLabelValues(report).Set(float64(at.UnixNano()) / 1e9)
}
