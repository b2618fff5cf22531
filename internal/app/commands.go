package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry"
)

// ExitError ends a command with a status after it already said why.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// flags is a command's flag set that reports errors in one line instead of
// printing the whole usage; --help prints the usage to stdout.
type flags struct {
	*flag.FlagSet
	synopsis string
	out      io.Writer
}

func newFlags(name, synopsis string, std Std) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// The flag package calls Usage on every parse error; only --help
	// should print it, so parse does that itself.
	fs.Usage = func() {}
	return &flags{FlagSet: fs, synopsis: synopsis, out: std.Out}
}

// parse parses args; --help prints usage and returns flag.ErrHelp.
func parse(fs *flags, args []string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(fs.out, "Usage: sspr-exporter %s\n\nFlags:\n", fs.synopsis)
		fs.SetOutput(fs.out)
		fs.PrintDefaults()
		return err
	}
	if err != nil {
		return &UsageError{err}
	}
	return nil
}

// loadConfig loads the file named by --config, or the defaults when path is
// empty and allowEmpty; problems are a *UsageError.
func loadConfig(path string, allowEmpty bool) (config.Config, error) {
	if path == "" && !allowEmpty {
		return config.Config{}, &UsageError{errors.New("--config FILE is required")}
	}
	cfg, err := config.Load(path, os.Environ())
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return cfg, &UsageError{fmt.Errorf("%w (run 'sspr-exporter validate --config %s' to list every problem)", firstProblem(ce), path)}
		}
		return cfg, &UsageError{err}
	}
	return cfg, nil
}

func firstProblem(ce *config.Error) error {
	if len(ce.Problems) == 1 {
		return fmt.Errorf("config %s: %w", ce.File, ce.Problems[0])
	}
	return fmt.Errorf("config %s: %w, and %d more problem(s)", ce.File, ce.Problems[0], len(ce.Problems)-1)
}

// Replay decodes files (or stdin) and writes ECS NDJSON in input order.
func Replay(ctx context.Context, args []string, std Std) error {
	fs := newFlags("replay", "replay [flags] [FILE...]\n\nDecodes Entra audit records from FILEs (or stdin when none or '-'), keeps the SSPR\nevents and writes them as ECS NDJSON to stdout, in input order (or to the outputs\nof --config). Dead-letter lines in the input are re-driven. A JSON summary line\nis written to stderr at the end.", std)
	cfgPath := fs.String("config", "", "take outputs and decode settings from this config file")
	dlPath := fs.String("dead-letter", "", "write dead letters to this file (default: stderr)")
	maxBody := fs.Int64("max-body-bytes", 0, "largest top-level JSON value held in memory (default 16 MiB)")
	preserve := fs.Bool("preserve-original", false, "copy each raw record to event.original")
	tenant := fs.String("default-tenant-id", "", "tenant for records that carry none (Graph input)")
	logLevel := fs.String("log-level", "error", "log level on stderr: debug, info, warn, error")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, true)
	if err != nil {
		return err
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{"-"}
	}
	cfg.Input = config.Input{Type: config.InputFile, File: config.FileInput{Paths: paths, PollInterval: time.Second}}
	if *cfgPath == "" {
		cfg.Log.Level = *logLevel
	}
	if *dlPath != "" {
		cfg.DeadLetter.Type, cfg.DeadLetter.Path = config.DeadLetterFile, *dlPath
	} else if *cfgPath == "" {
		cfg.DeadLetter.Type, cfg.DeadLetter.Path = config.DeadLetterFile, "-"
	}
	if *maxBody > 0 {
		cfg.Decode.MaxBodyBytes = *maxBody
	}
	if *preserve {
		cfg.Decode.PreserveOriginal = true
	}
	if *tenant != "" {
		cfg.Decode.DefaultTenantID = *tenant
	}
	// Input order is kept only with one batch in flight.
	cfg.Pipeline.MaxInFlight = 1
	if errs := cfg.Validate(); len(errs) > 0 {
		return &UsageError{errs[0]}
	}
	logger, lh := Logger(cfg, std.Err)
	defer lh.Flush(context.WithoutCancel(ctx))
	ex, err := Build(cfg, std, logger, nil)
	if err != nil {
		return err
	}
	runErr := ex.Pipeline.Run(ctx)
	closeErr := ex.Close(context.WithoutCancel(ctx))
	sum, _ := json.Marshal(ex.Pipeline.Summary())
	fmt.Fprintf(std.Err, "%s\n", sum)
	if runErr != nil {
		return runErr
	}
	return closeErr
}

// Run is the long-running service.
func Run(ctx context.Context, args []string, std Std) error {
	fs := newFlags("run", "run --config FILE\n\nRuns the exporter as configured until the input ends (file input without\nfollow) or SIGINT/SIGTERM, which finishes in-flight work first.", std)
	cfgPath := fs.String("config", "", "config file (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &UsageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	cfg, err := loadConfig(*cfgPath, false)
	if err != nil {
		return err
	}
	logger, lh := Logger(cfg, std.Err)
	go lh.Run(ctx)
	defer lh.Flush(context.WithoutCancel(ctx))
	for _, name := range cfg.UnknownEnv {
		logger.Warn("environment variable matches no config key", "variable", name)
	}
	tel := telemetry.New(cfg.Telemetry, logger.With("component", "telemetry"), lh.Redactor())
	if err := tel.Server.Start(); err != nil {
		return fmt.Errorf("telemetry.address: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Telemetry.ShutdownTimeout)
		defer cancel()
		_ = tel.Server.Shutdown(sctx)
	}()
	if err := prepareWithRetry(ctx, cfg, logger, tel, startupBackoff{}); err != nil {
		if ctx.Err() != nil {
			// Stopped before the outputs were ready: nothing was read.
			logger.Info("exporter stopped before start", "reason", err)
			return nil
		}
		return err
	}
	ex, err := Build(cfg, std, logger, tel)
	if err != nil {
		return err
	}
	tel.Metrics.CountsFrom(telemetry.PipelineCounts(ex.Pipeline))
	logger.Info("exporter started", "input", cfg.Input.Type)
	runErr := ex.Pipeline.Run(ctx)
	closeErr := ex.Close(context.WithoutCancel(ctx))
	sum := ex.Pipeline.Summary()
	logger.Info("exporter stopped", "records", sum.Records, "sspr", sum.SSPR, "dropped", sum.Dropped, "dead_lettered", sum.DeadLettered)
	if runErr != nil {
		return runErr
	}
	return closeErr
}

// SetupCmd installs the Elasticsearch ILM policy and templates and creates
// the Kafka topic, as configured.
func SetupCmd(ctx context.Context, args []string, std Std) error {
	fs := newFlags("setup", "setup --config FILE\n\nInstalls what the enabled outputs need, idempotently: the Elasticsearch ILM\npolicy, component templates and index template; the Kafka topic (when\noutput.kafka.setup.create_topic allows).", std)
	cfgPath := fs.String("config", "", "config file (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, false)
	if err != nil {
		return err
	}
	logger, lh := Logger(cfg, std.Err)
	defer lh.Flush(context.WithoutCancel(ctx))
	return Setup(ctx, cfg, logger, std.Out)
}

// Validate lists every problem of a config file, one per line.
func Validate(args []string, std Std) error {
	fs := newFlags("validate", "validate --config FILE\n\nChecks a config file (and the SSPR_* environment) and prints every problem,\none per line with its key path. Exit status 0 only when there is none.", std)
	cfgPath := fs.String("config", "", "config file (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadReporting(*cfgPath, std.Out, "")
	if err != nil {
		return err
	}
	for _, name := range cfg.UnknownEnv {
		fmt.Fprintf(std.Err, "warning: environment variable %s matches no config key\n", name)
	}
	fmt.Fprintf(std.Out, "%s: OK\n", *cfgPath)
	return nil
}

// loadReporting loads a config for the commands that report on it: every
// problem is printed on its own line (after prefix) and ends the command
// with status 1; a missing path or file is a usage error.
func loadReporting(path string, w io.Writer, prefix string) (config.Config, error) {
	if path == "" {
		return config.Config{}, &UsageError{errors.New("--config FILE is required")}
	}
	cfg, err := config.Load(path, os.Environ())
	var ce *config.Error
	switch {
	case errors.As(err, &ce):
		for _, p := range ce.Problems {
			fmt.Fprintf(w, "%s%v\n", prefix, p)
		}
		return cfg, &ExitError{Code: 1}
	case err != nil:
		return cfg, &UsageError{err}
	}
	return cfg, nil
}
