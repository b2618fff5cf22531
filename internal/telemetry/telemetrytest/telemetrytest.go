// Package telemetrytest reads what the telemetry serves, for tests: the
// metrics from /metrics or a gatherer, one series' value, and any endpoint's
// status and body. Only tests import it.
package telemetrytest

import (
	"io"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics are metric families by name.
type Metrics map[string]*dto.MetricFamily

// Scrape reads /metrics from the telemetry server at addr (host:port).
func Scrape(t testing.TB, addr string) Metrics {
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

// Gather reads the metrics of g.
func Gather(t testing.TB, g prometheus.Gatherer) Metrics {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := Metrics{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	return byName
}

// Value returns the value of the series of name whose labels include want,
// summed over the matching series (for a histogram, its sample count); -1
// when there is no such metric.
func (m Metrics) Value(name string, want map[string]string) float64 {
	mf := m[name]
	if mf == nil {
		return -1
	}
	total := 0.0
	for _, s := range mf.GetMetric() {
		if !hasLabels(s, want) {
			continue
		}
		switch {
		case s.Counter != nil:
			total += s.GetCounter().GetValue()
		case s.Gauge != nil:
			total += s.GetGauge().GetValue()
		case s.Histogram != nil:
			total += float64(s.GetHistogram().GetSampleCount())
		}
	}
	return total
}

func hasLabels(s *dto.Metric, want map[string]string) bool {
	labels := map[string]string{}
	for _, l := range s.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Get returns the status and body of a GET of url.
func Get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
