package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/backfill"
	"github.com/sspr-exporter/sspr-exporter/internal/backfill/coverage"
	"github.com/sspr-exporter/sspr-exporter/internal/backfill/progress"
	"github.com/sspr-exporter/sspr-exporter/internal/backfill/retention"
	"github.com/sspr-exporter/sspr-exporter/internal/backfill/state"
	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/pipeline"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/elasticsearch"
	"github.com/sspr-exporter/sspr-exporter/internal/source/archive"
	"github.com/sspr-exporter/sspr-exporter/internal/source/graphaudit"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry"
)

// Backfill inputs, the command's first argument.
const (
	BackfillGraph = "graph"
	BackfillBlob  = "blob"
)

// entraRetention is the longest Entra keeps audit logs (P1/P2; 7 days on
// Free): Graph has nothing older.
const entraRetention = 30 * 24 * time.Hour

const backfillSynopsis = `backfill graph --config FILE (--since 30d | --from T) [--to T] [flags]
       sspr-exporter backfill blob --config FILE --from DATE [--to DATE] [flags]

Reads past audit records into the outputs of the config, through the same
classification, normalization, sinks and dead letters as run: from Microsoft
Graph (the last 7 or 30 days Entra keeps), or from the PT1H.json archives a
diagnostic setting writes to a storage account. Progress is checkpointed in
--state only once the outputs acknowledged it: run the same command again to
continue after a stop or a crash. At the end a coverage report (hours with and
without data per tenant) is printed on stderr, and written to --report as JSON.
Times are RFC 3339 (2026-11-01T05:00:00Z) or dates (2026-11-01; --to includes
that day).`

// backfillFlags are the command line of backfill.
type backfillFlags struct {
	input, config, since, from, to, state, report, progress string
	allowExpiring                                           bool
}

// Backfill reads a range of past audit records into the outputs.
func Backfill(ctx context.Context, args []string, std Std) error {
	fs := newFlags("backfill", backfillSynopsis, std)
	var f backfillFlags
	fs.StringVar(&f.config, "config", "", configUsage)
	fs.StringVar(&f.since, "since", "", "graph: read back this far from now (30d, 2w, 36h)")
	fs.StringVar(&f.from, "from", "", "start of the range (included)")
	fs.StringVar(&f.to, "to", "", "end of the range (excluded; a date includes that day); default now")
	fs.StringVar(&f.state, "state", "", "checkpoint file (default under $XDG_STATE_HOME/sspr-exporter, named after the config and the input)")
	fs.StringVar(&f.report, "report", "", "also write the coverage report to this file as JSON")
	fs.StringVar(&f.progress, "progress", progress.ModeAuto, "auto (a bar on a terminal, else log lines), bar, log or off")
	fs.BoolVar(&f.allowExpiring, "allow-expiring", false, "backfill a range older than the outputs' retention (its indices are deleted right away)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if len(fs.args) != 1 || (fs.args[0] != BackfillGraph && fs.args[0] != BackfillBlob) {
		return &UsageError{errors.New("backfill needs its input: 'backfill graph' or 'backfill blob'")}
	}
	f.input = fs.args[0]
	now := time.Now().UTC()
	rng, err := backfillRange(f, now)
	if err != nil {
		return &UsageError{err}
	}
	cfgPath := configPath(f.config)
	cfg, settings, err := loadBackfill(cfgPath)
	if err != nil {
		return err
	}
	if !slices.Contains(progress.Modes, f.progress) {
		return &UsageError{fmt.Errorf("--progress: must be one of %s (got %q)", strings.Join(progress.Modes, ", "), f.progress)}
	}
	if f.input == BackfillBlob {
		if err := settings.Blob.Require(); err != nil {
			return &UsageError{fmt.Errorf("backfill.blob.%w", err)}
		}
	}
	if !f.allowExpiring {
		if err := retention.Check(rng.From, now, retentionPolicies(cfg)); err != nil {
			// One line: a decision to take, not a mistake on the command line.
			fmt.Fprintf(std.Err, "sspr-exporter: %v\n", err)
			return &ExitError{Code: 2}
		}
	}
	p, err := startProcess(ctx, cfg, std, false)
	if err != nil {
		return err
	}
	defer p.close(ctx)
	p.log.Redactor().AddStrings(secret.In(settings)...)
	return runBackfill(ctx, f, rng, cfg, settings, std, p.logger, p.tel)
}

// backfillRange reads --since, --from and --to.
func backfillRange(f backfillFlags, now time.Time) (backfill.Range, error) {
	var r backfill.Range
	switch {
	case f.input == BackfillBlob && f.since != "":
		return r, errors.New("--since: only for backfill graph; give --from DATE")
	case f.input == BackfillBlob && f.from == "":
		return r, errors.New("--from DATE is required")
	case f.since != "" && f.from != "":
		return r, errors.New("give either --since or --from, not both")
	case f.since == "" && f.from == "":
		return r, errors.New("--since or --from is required")
	}
	if f.since != "" {
		age, err := backfill.ParseAge(f.since)
		if err != nil {
			return r, fmt.Errorf("--since: %w", err)
		}
		r.From = now.Add(-age)
	} else {
		t, err := backfill.ParseTime(f.from, false)
		if err != nil {
			return r, fmt.Errorf("--from: %w", err)
		}
		r.From = t
	}
	r.To = now
	if f.to != "" {
		t, err := backfill.ParseTime(f.to, true)
		if err != nil {
			return r, fmt.Errorf("--to: %w", err)
		}
		r.To = t
	}
	// Nothing exists after now; a slice ending in the future would be
	// taken for complete too early.
	if r.To.After(now) {
		r.To = now
	}
	return r, r.Validate()
}

// retentionPolicies are the enabled outputs' index retentions that count
// from the date an index's name carries, as the output's lifecycle policy
// does: only those delete a backfilled index right away. An output whose
// policy counts from the index's creation (OpenSearch's ISM) keeps a
// backfill for its whole retention and adds nothing here; one that counts
// from the name adds its policy with the bucket of its own index names.
func retentionPolicies(cfg config.Config) []retention.Policy {
	var ps []retention.Policy
	if o := cfg.Output.Elasticsearch; o.Enabled {
		ps = append(ps, retention.Policy{Key: "output.elasticsearch.ilm.retention_days", Days: o.ILM.RetentionDays, Bucket: indexDate(o.Index.Prefix, o.Index.Granularity)})
	}
	return ps
}

// indexDate is the date the sink's index name for an event carries.
func indexDate(prefix, granularity string) func(time.Time) time.Time {
	return func(t time.Time) time.Time {
		name := elasticsearch.IndexName(prefix, granularity, t)
		d, err := time.Parse("2006.01.02", name[strings.LastIndexByte(name, '-')+1:])
		if err != nil {
			return t
		}
		return d
	}
}

// backfillReader is what either input gives the command.
type backfillReader interface {
	backfill.Reader
	Source() string
}

func runBackfill(ctx context.Context, f backfillFlags, rng backfill.Range, cfg config.Config, settings config.Backfill, std Std, logger *slog.Logger, tel *telemetry.Telemetry) error {
	logger = logger.With("component", "backfill", "input", f.input)
	if err := Prepare(ctx, cfg, logger); err != nil {
		return err
	}
	dec, err := Decoder(cfg)
	if err != nil {
		return err
	}
	var reader backfillReader
	noun := "blobs"
	switch f.input {
	case BackfillGraph:
		gr, err := graphaudit.New(settings.Graph, graphaudit.Options{Range: rng, Activities: activityNames(cfg), Logger: logger})
		if err != nil {
			return fmt.Errorf("backfill.graph: %w", err)
		}
		tenant, err := gr.Tenant(ctx)
		if err != nil {
			return err
		}
		if d := cfg.Decode.DefaultTenantID; d != "" && !strings.EqualFold(d, tenant) {
			logger.Info("Graph records carry no tenant: they get the tenant read, not decode.default_tenant_id", "tenant", tenant, "default_tenant_id", d)
		}
		// Graph records carry no tenant: they belong to the one read.
		cfg.Decode.DefaultTenantID = tenant
		if dec, err = Decoder(cfg); err != nil {
			return err
		}
		if oldest := time.Now().Add(-entraRetention); rng.From.Before(oldest) {
			logger.Warn("Entra keeps audit logs 30 days at most (7 on Free): earlier hours will show as gaps", "from", rng.From.Format(time.RFC3339), "kept_since", oldest.UTC().Format(time.RFC3339))
		}
		reader, noun = gr, "slices"
	default:
		ar, err := archive.New(settings.Blob, archive.Options{Range: rng, MaxBodyBytes: int(cfg.Decode.MaxBodyBytes), Logger: logger})
		if err != nil {
			return fmt.Errorf("backfill.blob: %w", err)
		}
		reader = ar
	}
	store, err := openState(f, reader.Source())
	if err != nil {
		return err
	}
	tracker := backfill.NewTracker(reader, backfill.Options{Store: store, Decoder: dec, Noun: noun, Logger: logger})
	ex, err := Build(cfg, std, logger, tel, WithSource("backfill", tracker))
	if err != nil {
		_ = tracker.Close(ctx)
		return err
	}
	logger.Info("backfill started", "from", rng.From.Format(time.RFC3339), "to", rng.To.Format(time.RFC3339), "state", store.Path())
	disp := progress.Start(progress.Options{Mode: f.progress, W: std.Err, Logger: logger}, tracker.Snapshot)
	_ = tracker.Start(ctx)
	runErr := ex.Pipeline.Run(ctx)
	disp.Stop()
	closeErr := ex.Close(context.WithoutCancel(ctx))
	return finishBackfill(ctx, f, rng, tracker, std, logger, runErr, closeErr)
}

// activityNames are the catalog's names, the configured ones included.
func activityNames(cfg config.Config) []string {
	var out []string
	for _, a := range sspr.Builtin {
		out = append(out, a.Name)
	}
	for _, a := range cfg.Classify.Activities {
		out = append(out, a.Name)
	}
	return out
}

func openState(f backfillFlags, source string) (*state.Store, error) {
	path := f.state
	if path == "" {
		p, err := state.DefaultPath(f.input, configPath(f.config), source)
		if err != nil {
			return nil, &UsageError{err}
		}
		path = p
	}
	s, err := state.Open(path, f.input, source)
	if err != nil {
		return nil, &UsageError{err}
	}
	return s, nil
}

// finishBackfill reports coverage and totals and chooses the exit.
func finishBackfill(ctx context.Context, f backfillFlags, rng backfill.Range, tr *backfill.Tracker, std Std, logger *slog.Logger, runErr, closeErr error) error {
	rep := tr.Coverage(f.input, rng)
	_ = rep.WriteText(std.Err)
	var reportErr error
	if f.report != "" {
		reportErr = writeReport(f.report, rep)
	}
	snap := tr.Snapshot()
	tot := tr.Totals()
	secs := snap.Elapsed.Seconds()
	logger.Info("backfill stopped", "complete", rep.Complete, "records", tot.Records, "sspr", tot.SSPR, "dropped", tot.Dropped, "dead_lettered", tot.DeadLettered,
		"seconds", int64(secs), "records_per_second", int64(float64(tot.Records)/max(secs, 1e-9)), "events_per_second", int64(float64(tot.SSPR)/max(secs, 1e-9)))
	var undelivered *pipeline.UndeliveredError
	switch {
	case errors.As(runErr, &undelivered):
		logger.Error("shutdown grace period ran out: batches not delivered, not checkpointed; run the backfill again to read them",
			"batches", undelivered.Batches, "grace", undelivered.Grace.String())
		return &ExitError{Code: 1}
	case ctx.Err() != nil:
		logger.Info("backfill interrupted: run it again to continue", "state", "checkpointed")
		return &ExitError{Code: InterruptCode(ctx)}
	case runErr != nil:
		return fmt.Errorf("backfill: %w", runErr)
	case closeErr != nil:
		return fmt.Errorf("backfill: %w", closeErr)
	case reportErr != nil:
		return reportErr
	case !rep.Complete:
		return fmt.Errorf("backfill: %d of %d units were not read; run it again", rep.Units-rep.UnitsDone, rep.Units)
	}
	return nil
}

func writeReport(path string, rep coverage.Report) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("--report: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	return nil
}

// loadBackfill loads the config file; its [backfill] section holds the
// command's inputs.
func loadBackfill(path string) (config.Config, config.Backfill, error) {
	cfg, err := loadConfig(path, false)
	return cfg, cfg.Backfill, err
}
