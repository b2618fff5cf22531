// Package app wires the configured components into the commands: one
// description of every source, sink and dead-letter output
// (components.go), which building the exporter, the start-up check, setup
// and the check command all go through, and each command's process: its
// logger and telemetry, started under the command's context and stopped
// before it returns.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich/graph"
	"github.com/sspr-exporter/sspr-exporter/internal/pipeline"
	"github.com/sspr-exporter/sspr-exporter/internal/report/schedule"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/logging"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry/metrics"
)

// UsageError is a problem with the command line or its inputs (exit 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Std are the process's standard streams.
type Std struct {
	In       io.Reader
	Out, Err io.Writer
}

// Exporter is a wired pipeline with everything it must start and close.
type Exporter struct {
	Pipeline *pipeline.Pipeline
	start    func(context.Context) error // the source's, when it has one
	closers  []func(context.Context) error
	reports  *schedule.Scheduler // [[reports]], with WithReports
}

// starter is a source that reads only once started.
type starter interface {
	Start(ctx context.Context) error
}

// Start starts the source reading; call it once, before Pipeline.Run (Run
// does both). The source runs until Close, not until ctx ends: when a
// signal ends ctx the pipeline stops reading but still delivers what it
// read within the shutdown grace, and the source must be there to
// acknowledge it.
func (e *Exporter) Start(ctx context.Context) error {
	if e.start == nil {
		return nil // a source that reads from the start
	}
	if err := e.start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start source: %w", err)
	}
	return nil
}

// Run starts the source and runs the pipeline until the input ends or
// ctx is cancelled (see pipeline.Pipeline.Run). It is where the commands
// start the source; call it once.
func (e *Exporter) Run(ctx context.Context) error {
	if err := e.Start(ctx); err != nil {
		return err
	}
	return e.Pipeline.Run(ctx)
}

// Close closes the source, the sinks, the dead-letter output and the
// enrichers, in that order, and returns every error.
func (e *Exporter) Close(ctx context.Context) error {
	var errs []error
	for _, c := range e.closers {
		errs = append(errs, c(ctx))
	}
	return errors.Join(errs...)
}

// Decoder builds the decode stage from the config.
func Decoder(cfg config.Config) (pipeline.Decoder, error) {
	extra := make([]sspr.Activity, 0, len(cfg.Classify.Activities))
	for _, a := range cfg.Classify.Activities {
		extra = append(extra, sspr.Activity{Name: a.Name, Action: a.Action, Type: a.Type})
	}
	cat, err := sspr.NewCatalog(extra)
	if err != nil {
		return pipeline.Decoder{}, fmt.Errorf("classify.activities: %w", err)
	}
	return pipeline.Decoder{
		MaxBodyBytes: int(cfg.Decode.MaxBodyBytes),
		Catalog:      cat,
		Normalize:    sspr.Options{PreserveOriginal: cfg.Decode.PreserveOriginal, DefaultTenantID: cfg.Decode.DefaultTenantID},
	}, nil
}

// graphConfig is the Graph enricher's config, nil when it is off.
func graphConfig(g config.GraphEnrich) *graph.Config {
	if !g.Enabled {
		return nil
	}
	return &g.Config
}

// Option changes what Build wires.
type Option func(*buildOptions)

type buildOptions struct {
	redrive    bool
	source     stream.Source
	sourceName string
	reports    bool
}

// WithRedrive makes the pipeline process dead-letter lines of its input
// again (replay). Without it they are ordinary input.
func WithRedrive() Option { return func(o *buildOptions) { o.redrive = true } }

// WithSource makes the pipeline read src, a source of the command's own,
// instead of the configured input; name is its readiness ("source."+name).
// The command starts it (under its own context); the Exporter closes it.
func WithSource(name string, src stream.Source) Option {
	return func(o *buildOptions) { o.source, o.sourceName = src, name }
}

// Build wires the exporter described by cfg; nothing is read before Run.
// Inputs are checked first: a missing input is a *UsageError. Every
// component reports to tel's metrics and readiness checks.
func Build(cfg config.Config, std Std, logger *slog.Logger, tel *telemetry.Telemetry, opts ...Option) (*Exporter, error) {
	return build(cfg, componentsOf(cfg), std, logger, tel, opts...)
}

// build wires the enabled ones of comps, as cfg configures the stages
// between them.
func build(cfg config.Config, comps components, std Std, logger *slog.Logger, tel *telemetry.Telemetry, opts ...Option) (_ *Exporter, err error) {
	var bo buildOptions
	for _, o := range opts {
		o(&bo)
	}
	ex := &Exporter{}
	defer func() {
		if err != nil {
			_ = ex.Close(context.Background())
		}
	}()

	dec, err := Decoder(cfg)
	if err != nil {
		return nil, err
	}
	src, err := ex.openSource(cfg, comps.inputs, bo, std, logger, tel)
	if err != nil {
		return nil, err
	}
	sinks, err := ex.openSinks(comps.outputs, std, logger, tel)
	if err != nil {
		return nil, err
	}
	dl, err := ex.openDeadLetters(cfg, comps.deadLetters, std, logger)
	if err != nil {
		return nil, err
	}
	enr, err := enrich.New(cfg.Enrich.GeoIP, graphConfig(cfg.Enrich.Graph), logger.With("component", "enrich"))
	if err != nil {
		return nil, fmt.Errorf("enrich.%w", err)
	}
	ex.closers = append(ex.closers, enr.Close)
	dec.Enrich = enr
	tel.Metrics.EnrichStatsFrom(enr.Stats)

	ex.Pipeline = pipeline.New(tel.Metrics.Source(src), sinks, metrics.DeadLetters(dl, tel.Metrics), pipeline.Options{
		Decoder:       dec,
		Redrive:       bo.redrive,
		MaxInFlight:   cfg.Pipeline.MaxInFlight,
		ShutdownGrace: cfg.Pipeline.ShutdownGrace,
		Logger:        logger.With("component", "pipeline"),
		Observe:       tel.Metrics.BatchDone,
	})
	if bo.reports {
		if err := ex.addReports(cfg, logger, tel); err != nil {
			return nil, err
		}
	}
	return ex, nil
}

// openSource opens the selected input, or takes the command's own source.
func (e *Exporter) openSource(cfg config.Config, ins []input, bo buildOptions, std Std, logger *slog.Logger, tel *telemetry.Telemetry) (stream.Source, error) {
	name, src := bo.sourceName, bo.source
	if src == nil {
		in, ok := enabled(ins, func(in input) bool { return in.enabled })
		if !ok {
			return nil, fmt.Errorf("input.type: unknown source %q", cfg.Input.Type)
		}
		s, err := in.open(std, logger.With("component", "source."+in.name))
		if err != nil {
			var ue *UsageError
			if errors.As(err, &ue) {
				return nil, err
			}
			return nil, fmt.Errorf("input.%s: %w", in.name, err)
		}
		name, src = in.name, s
		if st, ok := s.(starter); ok {
			e.start = st.Start
		}
	}
	e.closers = append(e.closers, src.Close)
	register(tel, "source", name, src)
	return src, nil
}

// openSinks opens every enabled output, each timed and counted under its
// name.
func (e *Exporter) openSinks(outs []output, std Std, logger *slog.Logger, tel *telemetry.Telemetry) ([]pipeline.NamedSink, error) {
	var sinks []pipeline.NamedSink
	for _, o := range outs {
		if !o.enabled {
			continue
		}
		s, err := o.open(std, logger.With("component", "sink."+o.name))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.key(), err)
		}
		e.closers = append(e.closers, s.Close)
		register(tel, "sink", o.name, s)
		sinks = append(sinks, pipeline.NamedSink{Name: o.name, Sink: metrics.Sink(o.name, s, tel.Metrics)})
	}
	return sinks, nil
}

// openDeadLetters opens the selected dead-letter output.
func (e *Exporter) openDeadLetters(cfg config.Config, dls []deadLetterOutput, std Std, logger *slog.Logger) (deadletter.Writer, error) {
	dl, ok := enabled(dls, func(d deadLetterOutput) bool { return d.enabled })
	if !ok {
		return nil, fmt.Errorf("dead_letter.type: unknown output %q", cfg.DeadLetter.Type)
	}
	w, closeFn, err := dl.open(std, logger.With("component", dl.key))
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, closeFn)
	return w, nil
}

// enabled returns the first of items that is on.
func enabled[T any](items []T, on func(T) bool) (T, bool) {
	for _, it := range items {
		if on(it) {
			return it, true
		}
	}
	var zero T
	return zero, false
}

// Logger returns the process logger: JSON unless the destination is a
// terminal (or as configured), with every secret of cfg and every
// secret-looking value redacted, and repeated identical records
// summarised. The handler's Start writes those summaries; Close the rest.
func Logger(cfg config.Config, w io.Writer) (*slog.Logger, *logging.Handler) {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	logger, h := logging.New(w, cfg.Log.Format, level, logging.Options{RepeatInterval: cfg.Telemetry.LogRepeatInterval})
	h.Redactor().AddStrings(secret.In(cfg)...)
	return logger, h
}
