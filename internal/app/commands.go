package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/pipeline"
	filesink "github.com/sspr-exporter/sspr-exporter/internal/sink/file"
	filesource "github.com/sspr-exporter/sspr-exporter/internal/source/file"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// ExitError ends a command with a status after it already said why.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// flags is a command's flag set that reports errors in one line instead of
// printing the whole usage; --help prints the usage to stdout. Flags may
// come before, between and after the other arguments, up to a "--".
type flags struct {
	*flag.FlagSet
	synopsis string
	out      io.Writer
	args     []string // the arguments that are not flags, after parse
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
	flagArgs, rest := split(fs.FlagSet, args)
	fs.args = rest
	err := fs.Parse(flagArgs)
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

// split separates args into flags (with their values) and the other
// arguments, which the flag package alone would take to start at the first
// non-flag. "--" ends the flags; "-" is an argument (standard input).
func split(fs *flag.FlagSet, args []string) (flagArgs, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return flagArgs, append(rest, args[i+1:]...)
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		flagArgs = append(flagArgs, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		// A flag that is not boolean takes the next argument as its value;
		// an unknown one is left to Parse to report.
		if f := fs.Lookup(name); f != nil && !isBool(f) && i+1 < len(args) {
			i++
			flagArgs = append(flagArgs, args[i])
		}
	}
	return flagArgs, rest
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// configPath is the --config value, or else the SSPR_CONFIG variable's.
func configPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return config.PathFromEnv(os.Environ())
}

// configUsage is the help text of --config.
const configUsage = "config file (required; default $" + config.PathEnv + ")"

// loadConfig loads the file named by --config (or SSPR_CONFIG), or the
// defaults when there is none and allowEmpty; problems are a *UsageError.
func loadConfig(path string, allowEmpty bool) (config.Config, error) {
	path = configPath(path)
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
	fs := newFlags("replay", "replay [flags] [FILE...]\n\nDecodes Entra audit records from FILEs (or stdin when none or '-'), keeps the SSPR\nevents and writes them as ECS NDJSON to stdout, in input order (or to the outputs\nof --config). Dead-letter lines in the input are re-driven. A JSON summary line\nis written to stderr at the end. Flags may follow the FILEs; '--' ends them.", std)
	cfgFlag := fs.String("config", "", "take outputs and decode settings from this config file (default $"+config.PathEnv+")")
	dlPath := fs.String("dead-letter", "", "write dead letters to this file (default: stderr)")
	maxBody := fs.Int64("max-body-bytes", 0, "largest top-level JSON value held in memory; 0 is the default, 16 MiB")
	preserve := fs.Bool("preserve-original", false, "copy each raw record to event.original")
	tenant := fs.String("default-tenant-id", "", "tenant for records that carry none (Graph input)")
	logLevel := fs.String("log-level", "error", "log level on stderr: debug, info, warn, error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *maxBody < 0 {
		return &UsageError{fmt.Errorf("--max-body-bytes: must not be negative (got %d)", *maxBody)}
	}
	cfgPath := configPath(*cfgFlag)
	cfg, err := loadConfig(cfgPath, true)
	if err != nil {
		return err
	}
	paths := fs.args
	if len(paths) == 0 {
		paths = []string{"-"}
	}
	cfg.Input = config.Input{Type: config.InputFile, File: filesource.Config{Paths: paths, PollInterval: time.Second}}
	if cfgPath == "" {
		cfg.Log.Level = *logLevel
	}
	if *dlPath != "" {
		if err := checkWritable(*dlPath); err != nil {
			return &UsageError{fmt.Errorf("--dead-letter: %w", err)}
		}
		cfg.DeadLetter.Type, cfg.DeadLetter.Path = config.DeadLetterFile, *dlPath
	} else if cfgPath == "" {
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
	p, err := startProcess(ctx, cfg, std, false)
	if err != nil {
		return err
	}
	defer p.close(ctx)
	std.In = stopOnDone(ctx, std.In)
	ex, err := Build(cfg, std, p.logger, p.tel, WithRedrive())
	if err != nil {
		return err
	}
	runErr := ex.Run(ctx)
	closeErr := ex.Close(context.WithoutCancel(ctx))
	interrupted := ctx.Err() != nil
	sum, _ := json.Marshal(replaySummary{Counts: ex.Pipeline.Summary(), Interrupted: interrupted})
	fmt.Fprintf(std.Err, "%s\n", sum)
	var undelivered *pipeline.UndeliveredError
	if runErr != nil && !errors.As(runErr, &undelivered) {
		return runErr
	}
	if interrupted {
		// Not all input was read: a script must not take this for a
		// complete replay.
		return &ExitError{Code: InterruptCode(ctx)}
	}
	if runErr != nil {
		return runErr
	}
	return closeErr
}

// replaySummary is replay's last line on stderr.
type replaySummary struct {
	stream.Counts
	// Interrupted is true when SIGINT or SIGTERM stopped the replay
	// before the end of its input.
	Interrupted bool `json:"interrupted"`
}

// checkWritable reports whether path can be opened for appending, as the
// dead-letter output will be, without writing anything to it.
func checkWritable(path string) error {
	w, err := filesink.OpenWriter(filesink.Options{Path: path})
	if err != nil {
		return err
	}
	return w.Close()
}

// Run is the long-running service.
func Run(ctx context.Context, args []string, std Std) error {
	fs := newFlags("run", "run --config FILE\n\nRuns the exporter as configured until the input ends (file input without\nfollow) or SIGINT/SIGTERM, which finishes in-flight work first.", std)
	cfgPath := fs.String("config", "", configUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	if len(fs.args) > 0 {
		return &UsageError{fmt.Errorf("unexpected argument %q", fs.args[0])}
	}
	cfg, err := loadConfig(*cfgPath, false)
	if err != nil {
		return err
	}
	p, err := startProcess(ctx, cfg, std, true)
	if err != nil {
		return err
	}
	defer p.close(ctx)
	logger := p.logger
	for _, name := range cfg.UnknownEnv {
		logger.Warn("environment variable matches no config key", "variable", name)
	}
	if err := prepareWithRetry(ctx, cfg, logger, p.tel, startupBackoff{}); err != nil {
		if ctx.Err() != nil {
			// Stopped before the outputs were ready: nothing was read.
			logger.Info("exporter stopped before start", "reason", err)
			return nil
		}
		return err
	}
	std.In = stopOnDone(ctx, std.In)
	ex, err := Build(cfg, std, logger, p.tel, WithReports())
	if err != nil {
		return err
	}
	stopDetection, err := startDetection(ctx, cfg, std, logger, p.tel)
	if err != nil {
		_ = ex.Close(context.WithoutCancel(ctx))
		return err
	}
	logger.Info("exporter started", "input", cfg.Input.Type)
	runErr := ex.Run(ctx)
	closeErr := errors.Join(stopDetection(context.WithoutCancel(ctx)), ex.Close(context.WithoutCancel(ctx)))
	sum := ex.Pipeline.Summary()
	logger.Info("exporter stopped", "records", sum.Records, "sspr", sum.SSPR, "dropped", sum.Dropped, "dead_lettered", sum.DeadLettered)
	var undelivered *pipeline.UndeliveredError
	if errors.As(runErr, &undelivered) {
		// Said once, here, with what it means; nothing else failed.
		logger.Error("shutdown grace period ran out: batches not delivered, not checkpointed; their input will be read again",
			"batches", undelivered.Batches, "grace", undelivered.Grace.String())
		return &ExitError{Code: 1}
	}
	if runErr != nil {
		return runErr
	}
	return closeErr
}

// SetupCmd installs the Elasticsearch ILM policy and templates and creates
// the Kafka topic, as configured.
func SetupCmd(ctx context.Context, args []string, std Std) error {
	fs := newFlags("setup", "setup --config FILE\n\nInstalls what the enabled outputs need, idempotently: the Elasticsearch ILM\npolicy or OpenSearch ISM policy, component templates and index template; the\nKafka topic (when output.kafka.setup.create_topic allows).", std)
	cfgPath := fs.String("config", "", configUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, false)
	if err != nil {
		return err
	}
	p, err := startProcess(ctx, cfg, std, false)
	if err != nil {
		return err
	}
	defer p.close(ctx)
	return Setup(ctx, cfg, p.logger, std.Out)
}

// Validate lists every problem of a config file, one per line.
func Validate(args []string, std Std) error {
	fs := newFlags("validate", "validate --config FILE\n\nChecks a config file (and the SSPR_* environment) and prints every problem,\none per line with its key path. Exit status 0 only when there is none.", std)
	cfgPath := fs.String("config", "", configUsage)
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
	fmt.Fprintf(std.Out, "%s: OK\n", configPath(*cfgPath))
	return nil
}

// loadReporting loads a config for the commands that report on it: every
// problem is printed on its own line (after prefix) and ends the command
// with status 1; a missing path or file is a usage error.
func loadReporting(path string, w io.Writer, prefix string) (config.Config, error) {
	path = configPath(path)
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

// Interrupt is the cause with which the command's context is cancelled
// when a signal stops it.
type Interrupt struct{ Signal os.Signal }

func (i *Interrupt) Error() string { return "interrupted by " + i.Signal.String() }

// InterruptCode is the exit status of a command stopped by ctx's signal:
// 128 plus the signal's number, as shells report it (130 for SIGINT, 143
// for SIGTERM); 130 when ctx gives no signal.
func InterruptCode(ctx context.Context) int {
	var in *Interrupt
	if errors.As(context.Cause(ctx), &in) {
		if s, ok := in.Signal.(syscall.Signal); ok {
			return 128 + int(s)
		}
	}
	return 128 + int(syscall.SIGINT)
}

// stopOnDone returns a reader of r that reports the end of input once ctx
// is done, even while a read is blocked: reading a terminal or a pipe
// cannot be interrupted otherwise, and SIGINT/SIGTERM must stop a command
// whose standard input is silent. A read still blocked then ends with the
// process, which is about to exit.
func stopOnDone(ctx context.Context, r io.Reader) io.Reader {
	if r == nil {
		r = os.Stdin
	}
	return &doneReader{ctx: ctx, r: r, res: make(chan readResult, 1)}
}

type readResult struct {
	n   int
	err error
}

type doneReader struct {
	ctx     context.Context
	r       io.Reader
	buf     []byte // the pending read fills this, never the caller's slice
	pending bool
	res     chan readResult
}

func (d *doneReader) Read(p []byte) (int, error) {
	if d.ctx.Err() != nil {
		return 0, io.EOF
	}
	if !d.pending {
		if cap(d.buf) < len(p) {
			d.buf = make([]byte, len(p))
		}
		buf := d.buf[:len(p)]
		d.pending = true
		go func() {
			n, err := d.r.Read(buf)
			d.res <- readResult{n, err}
		}()
	}
	select {
	case r := <-d.res:
		d.pending = false
		return copy(p, d.buf[:r.n]), r.err
	case <-d.ctx.Done():
		return 0, io.EOF
	}
}
