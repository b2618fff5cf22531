package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sspr-exporter/sspr-exporter/internal/detect"
	"github.com/sspr-exporter/sspr-exporter/internal/detect/deliver"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore"
)

// reader hands out docs, or fails while fail is set; each Scan is
// signalled on scans.
type reader struct {
	docs  []ecs.Event
	fail  error
	scans chan struct{}
}

func (r *reader) Scan(_ context.Context, q eventstore.Query, fn func(*ecs.Event) error) error {
	if r.scans != nil {
		defer func() { r.scans <- struct{}{} }()
	}
	if r.fail != nil {
		return r.fail
	}
	for i := range r.docs {
		if q.Match(&r.docs[i]) {
			if err := fn(&r.docs[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (*reader) Describe() eventstore.Source { return eventstore.Source{Kind: "memory"} }

type sink struct{ got []string }

func (s *sink) Name() string { return "sink" }
func (s *sink) Send(_ context.Context, a []detect.Alert) error {
	for _, x := range a {
		s.got = append(s.got, x.RuleID)
	}
	return nil
}
func (*sink) Close(context.Context) error { return nil }

var now = time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)

func spray() []ecs.Event {
	var out []ecs.Event
	for i := range 5 {
		e := ecs.Event{Event: ecs.EventMeta{ID: fmt.Sprint(i), Action: "password-reset", Outcome: "failure"}}
		e.Time = now.Add(-time.Hour + time.Duration(i)*time.Minute)
		e.User.Target.Name = fmt.Sprintf("u%d", i)
		e.Source.IP = "192.0.2.7"
		out = append(out, e)
	}
	return out
}

func newRunner(t *testing.T, r eventstore.Reader, s *sink, reg prometheus.Registerer) *Runner {
	cfg := detect.DefaultConfig()
	eng, err := detect.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	run, err := New(Options{Engine: eng, Reader: r, Outputs: &deliver.Outputs{Outputs: []deliver.Output{s}, Memory: 25 * time.Hour},
		Interval: time.Hour, Lookback: cfg.Longest() + time.Hour, Registry: reg, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func TestOnceDeliversNewAlertsAndCounts(t *testing.T) {
	rd := &reader{docs: spray()}
	s := &sink{}
	reg := prometheus.NewRegistry()
	run := newRunner(t, rd, s, reg)
	ctx := context.Background()
	if _, err := run.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := run.Once(ctx); err != nil { // the same range: nothing new
		t.Fatal(err)
	}
	rd.fail = errors.New("store down")
	if _, err := run.Once(ctx); err == nil {
		t.Fatal("a failed read was not reported")
	}
	if strings.Join(s.got, ",") != detect.IDSprayIP {
		t.Errorf("sent %v", s.got)
	}
	if got := testutil.ToFloat64(run.runs.WithLabelValues("success")); got != 2 {
		t.Errorf("success runs %v", got)
	}
	if got := testutil.ToFloat64(run.runs.WithLabelValues("failure")); got != 1 {
		t.Errorf("failure runs %v", got)
	}
	if got := testutil.ToFloat64(run.alerts.WithLabelValues(detect.IDSprayIP)); got != 1 {
		t.Errorf("alerts %v", got)
	}
	if n, _ := testutil.GatherAndCount(reg, "sspr_detect_runs_total", "sspr_detect_alerts_total"); n != 2+10 {
		t.Errorf("%d series registered, want 2 results and 10 rules", n)
	}
}

func TestStartEvaluatesAndSurvivesFailures(t *testing.T) {
	rd := &reader{fail: errors.New("store down"), scans: make(chan struct{}, 1)}
	run := newRunner(t, rd, &sink{}, nil)
	if err := run.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-rd.scans // the first evaluation ran and failed; the loop goes on
	if err := run.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(run.runs.WithLabelValues("failure")); got != 1 {
		t.Errorf("failure runs %v", got)
	}
}
