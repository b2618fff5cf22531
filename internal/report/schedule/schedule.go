// Package schedule runs report jobs on cron schedules in UTC: one run of a
// job at a time (a tick that finds it still running is skipped and
// counted), every failure logged and counted, and the job tried again at
// its next tick. A failing job never stops anything else.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// Results of a run, the values of the result label.
const (
	ResultOK      = "ok"
	ResultError   = "error"
	ResultSkipped = "skipped" // the previous run had not finished
)

// Job is one scheduled report.
type Job struct {
	Name     string
	Schedule cron.Schedule
	Run      func(ctx context.Context) error
}

// Recorder counts runs; the telemetry metrics implement it.
type Recorder interface {
	ReportRun(report, result string)
	ReportSucceeded(report string, at time.Time)
}

// Options configure a Scheduler.
type Options struct {
	Logger   *slog.Logger
	Recorder Recorder         // nil records nothing
	Now      func() time.Time // default time.Now
	// NoCron leaves the schedules unused: runs happen only through
	// Trigger (tests).
	NoCron bool
}

// Scheduler runs jobs on their schedules between Start and Close. One
// goroutine owns which jobs are running; each run has its own goroutine.
type Scheduler struct {
	jobs map[string]Job
	opts Options
	cron *cron.Cron

	requests chan request
	finished chan finish
	cancel   context.CancelFunc
	done     chan struct{} // closed when the owner has stopped and every run ended
	closing  sync.Once
}

type request struct {
	name   string
	result chan<- Result // nil for a cron tick
}

type finish struct {
	name string
	res  Result
}

// Result is how a run ended.
type Result struct {
	Status string // ResultOK, ResultError or ResultSkipped
	Err    error
}

// New returns a scheduler of jobs; nothing runs before Start. Job names
// must be unique.
func New(jobs []Job, o Options) (*Scheduler, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Scheduler{
		jobs:     make(map[string]Job, len(jobs)),
		opts:     o,
		requests: make(chan request),
		finished: make(chan finish),
		done:     make(chan struct{}),
	}
	s.cron = cron.New(cron.WithLocation(time.UTC), cron.WithLogger(cron.DiscardLogger))
	for _, j := range jobs {
		if _, dup := s.jobs[j.Name]; dup {
			return nil, fmt.Errorf("report %s: scheduled twice", j.Name)
		}
		s.jobs[j.Name] = j
		if !o.NoCron {
			name := j.Name
			s.cron.Schedule(j.Schedule, cron.FuncJob(func() { s.tick(name) }))
		}
	}
	return s, nil
}

// Start starts the schedules. The runs last until Close, not until ctx
// ends; ctx's values are passed on to them.
func (s *Scheduler) Start(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	go s.own(runCtx)
	s.cron.Start()
	for name, j := range s.jobs {
		if !s.opts.NoCron {
			s.opts.Logger.Info("report scheduled", "report", name, "next", j.Schedule.Next(s.opts.Now().UTC()).Format(time.RFC3339))
		}
	}
	return nil
}

// tick is a cron firing: it asks the owner to run the job, unless the
// scheduler is closing.
func (s *Scheduler) tick(name string) {
	select {
	case s.requests <- request{name: name}:
	case <-s.done:
	}
}

// Trigger runs the named job now, as a tick would, and returns how the
// run ended (ResultSkipped at once when it is already running).
func (s *Scheduler) Trigger(ctx context.Context, name string) (Result, error) {
	if _, ok := s.jobs[name]; !ok {
		return Result{}, fmt.Errorf("no scheduled report %q", name)
	}
	ch := make(chan Result, 1)
	select {
	case s.requests <- request{name: name, result: ch}:
	case <-s.done:
		return Result{}, errClosed
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

var errClosed = errors.New("scheduler closed")

// own is the owner goroutine: it starts runs, skips a job already
// running, and records how each run ended.
func (s *Scheduler) own(ctx context.Context) {
	running := map[string]chan<- Result{} // job name -> who waits for its run (nil: a tick)
	defer close(s.done)
	ended := func(f finish) {
		if ch := running[f.name]; ch != nil {
			ch <- f.res
		}
		delete(running, f.name)
	}
	for {
		select {
		case req := <-s.requests:
			if _, busy := running[req.name]; busy {
				s.record(req.name, Result{Status: ResultSkipped})
				s.opts.Logger.Warn("report skipped: its previous run has not finished", "report", req.name)
				if req.result != nil {
					req.result <- Result{Status: ResultSkipped}
				}
				continue
			}
			running[req.name] = req.result
			go s.run(ctx, s.jobs[req.name])
		case f := <-s.finished:
			ended(f)
		case <-ctx.Done():
			// Wait for the runs, which the cancellation ends.
			for len(running) > 0 {
				ended(<-s.finished)
			}
			return
		}
	}
}

// run runs one job and reports its end to the owner.
func (s *Scheduler) run(ctx context.Context, j Job) {
	start := s.opts.Now()
	err := runSafely(ctx, j)
	res := Result{Status: ResultOK, Err: err}
	switch {
	case err != nil && ctx.Err() != nil:
		// Stopped by Close: not a failure of the report.
		res.Status = ResultError
		s.opts.Logger.Info("report run stopped by shutdown", "report", j.Name)
	case err != nil:
		res.Status = ResultError
		s.record(j.Name, res)
		attrs := []any{"report", j.Name, "error", err.Error(), "duration", time.Since(start).Round(time.Millisecond).String()}
		if !s.opts.NoCron {
			attrs = append(attrs, "retry", j.Schedule.Next(s.opts.Now().UTC()).Format(time.RFC3339))
		}
		s.opts.Logger.Error("report failed; it runs again at its next scheduled time", attrs...)
	default:
		s.record(j.Name, res)
		s.opts.Logger.Info("report delivered", "report", j.Name, "duration", time.Since(start).Round(time.Millisecond).String())
	}
	s.finished <- finish{name: j.Name, res: res}
}

// runSafely turns a panic of a job into its error: one report's bug must
// not take the exporter down.
func runSafely(ctx context.Context, j Job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return j.Run(ctx)
}

func (s *Scheduler) record(name string, r Result) {
	if s.opts.Recorder == nil {
		return
	}
	s.opts.Recorder.ReportRun(name, r.Status)
	if r.Status == ResultOK {
		s.opts.Recorder.ReportSucceeded(name, s.opts.Now())
	}
}

// Close stops the schedules, cancels the runs under way and waits for
// them, or for ctx.
func (s *Scheduler) Close(ctx context.Context) error {
	if s.cancel == nil {
		return nil // never started
	}
	s.closing.Do(func() {
		<-s.cron.Stop().Done()
		s.cancel()
	})
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("reports: %w", ctx.Err())
	}
}
