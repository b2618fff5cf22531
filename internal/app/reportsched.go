package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore"
	"github.com/sspr-exporter/sspr-exporter/internal/report"
	"github.com/sspr-exporter/sspr-exporter/internal/report/deliver"
	"github.com/sspr-exporter/sspr-exporter/internal/report/schedule"
	filesink "github.com/sspr-exporter/sspr-exporter/internal/sink/file"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry"
)

// WithReports makes the exporter run the [[reports]] entries of the config
// on their schedules (the run command); they start and stop with it.
func WithReports() Option { return func(o *buildOptions) { o.reports = true } }

// scheduledReport is one [[reports]] entry ready to run.
type scheduledReport struct {
	entry   config.Report // defaults applied
	cfg     config.Config
	deliver deliver.Deliverer
}

func newScheduledReport(cfg config.Config, r config.Report) (*scheduledReport, error) {
	r = r.WithDefaults()
	if _, err := reportStoreInputs(cfg); err != nil {
		return nil, err
	}
	var d deliver.Deliverer
	switch {
	case r.Dir != "":
		d = deliver.Dir{Path: r.Dir}
	case r.Azblob.IsSet():
		b, err := deliver.NewBlob(r.Azblob)
		if err != nil {
			return nil, fmt.Errorf("azblob.%w", err)
		}
		d = b
	case r.Email.IsSet():
		e, err := deliver.NewEmail(r.Email)
		if err != nil {
			return nil, fmt.Errorf("email.%w", err)
		}
		d = e
	default:
		return nil, errors.New("dir: no destination")
	}
	return &scheduledReport{entry: r, cfg: cfg, deliver: d}, nil
}

// reportStoreInputs says what a scheduled report reads: the search output
// when one is enabled (nil inputs), else the file output's file.
func reportStoreInputs(cfg config.Config) ([]string, error) {
	o := cfg.Output
	if o.Elasticsearch.Enabled || o.OpenSearch.Enabled {
		return nil, nil
	}
	if o.File.Enabled && o.File.Path != "" && o.File.Path != filesink.Stdout {
		return []string{o.File.Path}, nil
	}
	return nil, errors.New("scheduled reports read the Elasticsearch or OpenSearch output, or the file output's file: enable one of them")
}

// run renders the report for the period ending at now into a temporary
// directory and delivers it with its manifest.
func (s *scheduledReport) run(ctx context.Context, now time.Time) error {
	r := s.entry
	from, to, err := r.Window(now)
	if err != nil {
		return err
	}
	inputs, err := reportStoreInputs(s.cfg)
	if err != nil {
		return err
	}
	// Opened for each run: the file output's file may not exist before
	// the first documents arrive, and a search client holds nothing open.
	store, err := eventstore.Open(s.cfg, inputs)
	if err != nil {
		return fmt.Errorf("event store: %w", err)
	}
	spec := report.Spec{Name: r.Report, Format: r.Format, Query: eventstore.Query{
		From: from, To: to, Tenants: r.Tenant, Domains: r.Domain, Groups: r.Group, Users: r.User, Outcomes: r.Outcome,
	}}
	dir, err := os.MkdirTemp("", "sspr-report-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, r.FileNameAt(to))
	m, err := report.WriteFile(ctx, store, spec, path, now)
	if err != nil {
		return err
	}
	// The manifest travels with the report: it names the file as
	// delivered, not the temporary path it was rendered at.
	m.File = filepath.Base(path)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	manifest := path + ".manifest.json"
	if err := os.WriteFile(manifest, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return s.deliver.Deliver(ctx, deliver.Delivery{Name: r.Name, Report: path, Manifest: manifest, From: from, To: to})
}

// addReports builds the scheduler of cfg's [[reports]], started with the
// exporter and closed with it.
func (e *Exporter) addReports(cfg config.Config, logger *slog.Logger, tel *telemetry.Telemetry) error {
	if len(cfg.Reports) == 0 {
		return nil
	}
	jobs := make([]schedule.Job, 0, len(cfg.Reports))
	for i, r := range cfg.Reports {
		sr, err := newScheduledReport(cfg, r)
		if err != nil {
			return fmt.Errorf("reports[%d].%w", i, err)
		}
		sched, err := config.ParseSchedule(r.Schedule)
		if err != nil {
			return fmt.Errorf("reports[%d].schedule: %w", i, err)
		}
		jobs = append(jobs, schedule.Job{Name: r.Name, Schedule: sched, Run: func(ctx context.Context) error {
			return sr.run(ctx, time.Now())
		}})
	}
	s, err := schedule.New(jobs, schedule.Options{Logger: logger.With("component", "reports"), Recorder: tel.Metrics})
	if err != nil {
		return err
	}
	e.reports = s
	source := e.start
	e.start = func(ctx context.Context) error {
		if source != nil {
			if err := source(ctx); err != nil {
				return err
			}
		}
		return s.Start(ctx)
	}
	e.closers = append(e.closers, s.Close)
	return nil
}

// reportScheduled is "report --scheduled NAME": the [[reports]] entry NAME
// of the config, run once now and delivered (a Kubernetes CronJob's
// command). Exit status 0 delivered, 1 failed, 2 unknown NAME or a
// config problem.
func reportScheduled(ctx context.Context, name string, f reportFlags, args []string, std Std) error {
	if len(args) > 0 {
		return &UsageError{fmt.Errorf("--scheduled runs a [[reports]] entry of --config; unexpected argument %q", args[0])}
	}
	if len(f.inputs) > 0 || f.since != "" || f.from != "" || f.to != "" || f.format != "" || f.output != "" ||
		len(f.tenants)+len(f.domains)+len(f.groups)+len(f.users)+len(f.outcomes) > 0 {
		return &UsageError{errors.New("--scheduled takes the period, filters, format and destination from the [[reports]] entry; give only --config")}
	}
	cfg, err := loadConfig(f.config, false)
	if err != nil {
		return err
	}
	r, ok := cfg.Reports.Find(name)
	if !ok {
		names := make([]string, len(cfg.Reports))
		for i, r := range cfg.Reports {
			names[i] = r.Name
		}
		return &UsageError{fmt.Errorf("--scheduled %s: no [[reports]] entry of that name in the config (has: %s)", name, strings.Join(names, ", "))}
	}
	sr, err := newScheduledReport(cfg, r)
	if err != nil {
		return &UsageError{fmt.Errorf("reports entry %s: %w", name, err)}
	}
	p, err := startProcess(ctx, cfg, std, false)
	if err != nil {
		return err
	}
	defer p.close(ctx)
	logger := p.logger.With("component", "reports", "report", name)
	start := time.Now()
	if err := sr.run(ctx, start); err != nil {
		logger.Error("report failed", "error", err.Error(), "destination", sr.deliver.Describe())
		return &ExitError{Code: 1}
	}
	logger.Info("report delivered", "destination", sr.deliver.Describe(), "duration", time.Since(start).Round(time.Millisecond).String())
	return nil
}
