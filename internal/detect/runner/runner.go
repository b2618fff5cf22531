// Package runner evaluates the detection rules on a schedule inside run:
// every interval over [now - lookback, now), delivering what is new. The
// lookback covers the longest window, so the windows still open at one
// evaluation are evaluated again at the next, and a restarted instance
// finds in the alerts index what it raised before. A failed evaluation is
// logged and counted and never stops the exporter.
package runner

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sspr-exporter/sspr-exporter/internal/detect"
	"github.com/sspr-exporter/sspr-exporter/internal/detect/deliver"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore"
)

// Options are what a Runner evaluates, over what, and where alerts go.
type Options struct {
	Engine             *detect.Engine
	Reader             eventstore.Reader
	Outputs            *deliver.Outputs
	Interval, Lookback time.Duration
	Logger             *slog.Logger
	Registry           prometheus.Registerer // nil: metrics are not registered
	Now                func() time.Time      // nil: time.Now
}

// Runner is the scheduled evaluation.
type Runner struct {
	o      Options
	runs   *prometheus.CounterVec
	alerts *prometheus.CounterVec
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds a runner; nothing runs before Start.
func New(o Options) (*Runner, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Runner{o: o,
		runs:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sspr_detect_runs_total", Help: "Rule evaluations, by result (success, failure)."}, []string{"result"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sspr_detect_alerts_total", Help: "New alerts delivered, by rule."}, []string{"rule"}),
	}
	for _, res := range []string{"success", "failure"} {
		r.runs.WithLabelValues(res)
	}
	for _, ri := range o.Engine.Rules() {
		r.alerts.WithLabelValues(ri.ID)
	}
	if o.Registry != nil {
		for _, c := range []prometheus.Collector{r.runs, r.alerts} {
			if err := o.Registry.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// Once evaluates [now - lookback, now) and delivers the new alerts.
func (r *Runner) Once(ctx context.Context) ([]detect.Alert, error) {
	now := r.o.Now().UTC()
	alerts, err := r.o.Engine.Evaluate(ctx, r.o.Reader, now.Add(-r.o.Lookback), now)
	if err == nil {
		alerts, err = r.o.Outputs.Deliver(ctx, alerts, now)
	}
	if err != nil {
		r.runs.WithLabelValues("failure").Inc()
		return nil, err
	}
	r.runs.WithLabelValues("success").Inc()
	for i := range alerts {
		r.alerts.WithLabelValues(alerts[i].RuleID).Inc()
	}
	return alerts, nil
}

// Start evaluates at once, then every interval, until Close.
func (r *Runner) Start(ctx context.Context) error {
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.o.Interval)
		defer t.Stop()
		for {
			r.evaluate(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

func (r *Runner) evaluate(ctx context.Context) {
	start := time.Now()
	alerts, err := r.Once(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.o.Logger.Error("detection failed; evaluating again at the next interval", "error", err.Error())
		}
		return
	}
	r.o.Logger.Info("detection evaluated", "new_alerts", len(alerts), "took", time.Since(start).String())
}

// Close stops the schedule, waits for an evaluation in progress, and
// closes the outputs.
func (r *Runner) Close(ctx context.Context) error {
	if r.cancel != nil {
		r.cancel()
		r.wg.Wait()
	}
	return r.o.Outputs.Close(ctx)
}
