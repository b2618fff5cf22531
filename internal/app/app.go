// Package app wires configured components into a running exporter: the
// source, the decoder, the sinks and the dead-letter output.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/deadletter/kafkadl"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich/graph"
	"github.com/sspr-exporter/sspr-exporter/internal/pipeline"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/elasticsearch"
	filesink "github.com/sspr-exporter/sspr-exporter/internal/sink/file"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/kafka"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/opensearch"
	"github.com/sspr-exporter/sspr-exporter/internal/source/eventhubs"
	filesource "github.com/sspr-exporter/sspr-exporter/internal/source/file"
	kafkasource "github.com/sspr-exporter/sspr-exporter/internal/source/kafka"
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

// Exporter is a wired pipeline with everything it must close.
type Exporter struct {
	Pipeline *pipeline.Pipeline
	start    func(context.Context) error // the source's
	closers  []func(context.Context) error
}

// Start starts the source reading; call it once, before Pipeline.Run. The
// source runs until Close, not until ctx ends: when a signal ends ctx the
// pipeline stops reading but still delivers what it read within the
// shutdown grace, and the source must be there to checkpoint it.
func (e *Exporter) Start(ctx context.Context) error {
	if e.start == nil {
		return errors.New("exporter: nothing to start")
	}
	return e.start(context.WithoutCancel(ctx))
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
	redrive bool
	source  stream.Source
}

// WithRedrive makes the pipeline process dead-letter lines of its input
// again (replay). Without it they are ordinary input.
func WithRedrive() Option { return func(o *buildOptions) { o.redrive = true } }

// WithSource makes the pipeline read src instead of the configured input
// (a backfill's); the Exporter closes it.
func WithSource(src stream.Source) Option { return func(o *buildOptions) { o.source = src } }

// Build wires the exporter described by cfg. Inputs are checked before
// anything is read: a missing input is a *UsageError. With tel, every
// component reports to its metrics and readiness checks.
func Build(cfg config.Config, std Std, logger *slog.Logger, tel *telemetry.Telemetry, opts ...Option) (*Exporter, error) {
	var bo buildOptions
	for _, o := range opts {
		o(&bo)
	}
	ex := &Exporter{}
	var rec metrics.Recorder = metrics.Nop{}
	if tel != nil {
		rec = tel.Metrics
	}
	// ready registers a component's readiness when telemetry is on.
	ready := func(name string, c any) {
		if r, ok := c.(stream.Readiness); ok && tel != nil {
			tel.Health.Add(name, r)
		}
	}
	ok := false
	defer func() {
		if !ok {
			_ = ex.Close(context.Background())
		}
	}()

	dec, err := Decoder(cfg)
	if err != nil {
		return nil, err
	}

	var src stream.Source
	inputName := cfg.Input.Type
	switch {
	case bo.source != nil:
		// The caller starts a source it gives (backfill starts its
		// tracker under the command's context).
		src, inputName = bo.source, "backfill"
	case cfg.Input.Type == config.InputFile:
		fs, err := filesource.Open(filesource.Options{
			Paths:        cfg.Input.File.Paths,
			Follow:       cfg.Input.File.Follow,
			PollInterval: cfg.Input.File.PollInterval,
			MaxBodyBytes: int(cfg.Decode.MaxBodyBytes),
			Stdin:        std.In,
			Logger:       logger.With("component", "source.file"),
		})
		if err != nil {
			return nil, &UsageError{err}
		}
		src, ex.start = fs, fs.Start
	case cfg.Input.Type == config.InputEventHubs:
		ehs, err := eventhubs.New(cfg.Input.EventHubs, logger.With("component", "source.eventhubs"))
		if err != nil {
			return nil, fmt.Errorf("input.eventhubs: %w", err)
		}
		src, ex.start = ehs, ehs.Start
		if tel != nil {
			tel.Metrics.WatchPartitions("eventhubs", telemetry.EventHubsPartitions(ehs))
		}
	case cfg.Input.Type == config.InputKafka:
		ks, err := kafkasource.New(cfg.Input.Kafka, logger.With("component", "source.kafka"))
		if err != nil {
			return nil, fmt.Errorf("input.kafka: %w", err)
		}
		src, ex.start = ks, ks.Start
		if tel != nil {
			tel.Metrics.WatchPartitions("kafka", telemetry.KafkaPartitions(ks))
		}
	default:
		return nil, fmt.Errorf("input.type: unknown source %q", cfg.Input.Type)
	}
	ex.closers = append(ex.closers, src.Close)
	ready("source."+inputName, src)
	if tel != nil {
		src = tel.Metrics.Source(src)
	}

	var sinks []pipeline.NamedSink
	if cfg.Output.File.Enabled {
		fsink, err := filesink.New(cfg.Output.File, logger.With("component", "sink.file"), filesink.WithStdout(std.Out))
		if err != nil {
			return nil, fmt.Errorf("output.file: %w", err)
		}
		sinks = append(sinks, pipeline.NamedSink{Name: "file", Sink: metrics.Sink("file", fsink, rec)})
		ex.closers = append(ex.closers, fsink.Close)
		ready("sink.file", fsink)
	}

	if o := cfg.Output.Elasticsearch; o.Enabled {
		es, err := elasticsearch.New(o.Config, logger.With("component", "sink.elasticsearch"))
		if err != nil {
			return nil, fmt.Errorf("output.elasticsearch: %w", err)
		}
		sinks = append(sinks, pipeline.NamedSink{Name: "elasticsearch", Sink: metrics.Sink("elasticsearch", es, rec)})
		ex.closers = append(ex.closers, es.Close)
		ready("sink.elasticsearch", es)
		if tel != nil {
			tel.Metrics.SinkStatsFrom("elasticsearch", telemetry.ElasticsearchStats(es))
		}
	}
	if o := cfg.Output.OpenSearch; o.Enabled {
		osink, err := opensearch.New(o.Config, logger.With("component", "sink.opensearch"))
		if err != nil {
			return nil, fmt.Errorf("output.opensearch: %w", err)
		}
		sinks = append(sinks, pipeline.NamedSink{Name: "opensearch", Sink: metrics.Sink("opensearch", osink, rec)})
		ex.closers = append(ex.closers, osink.Close)
		ready("sink.opensearch", osink)
		if tel != nil {
			// The same core as the Elasticsearch sink: the same counters.
			tel.Metrics.SinkStatsFrom("opensearch", telemetry.ElasticsearchStats(osink))
		}
	}
	if o := cfg.Output.Kafka; o.Enabled {
		k, err := kafka.New(o.Config, logger.With("component", "sink.kafka"))
		if err != nil {
			return nil, fmt.Errorf("output.kafka: %w", err)
		}
		sinks = append(sinks, pipeline.NamedSink{Name: "kafka", Sink: metrics.Sink("kafka", k, rec)})
		ex.closers = append(ex.closers, k.Close)
		ready("sink.kafka", k)
	}

	var dl deadletter.Writer
	switch cfg.DeadLetter.Type {
	case config.DeadLetterKafka:
		kw, err := kafkadl.New(cfg.DeadLetter.Kafka, logger.With("component", "dead_letter.kafka"))
		if err != nil {
			return nil, err
		}
		ex.closers = append(ex.closers, func(context.Context) error { return kw.Close() })
		dl = kw
	default:
		dlw, err := filesink.OpenWriter(filesink.Options{Path: cfg.DeadLetter.Path, Std: std.Err})
		if err != nil {
			return nil, fmt.Errorf("dead_letter.path: %w", err)
		}
		ex.closers = append(ex.closers, func(context.Context) error { return dlw.Close() })
		dl = deadletter.NewNDJSON(dlw)
	}

	enr, err := enrich.New(cfg.Enrich.GeoIP, graphConfig(cfg.Enrich.Graph), logger.With("component", "enrich"))
	if err != nil {
		return nil, fmt.Errorf("enrich.%w", err)
	}
	ex.closers = append(ex.closers, enr.Close)
	dec.Enrich = enr
	if tel != nil {
		tel.Metrics.EnrichStatsFrom(enr.Stats)
	}

	ex.Pipeline = pipeline.New(src, sinks, metrics.DeadLetters(dl, rec), pipeline.Options{
		Decoder:       dec,
		Redrive:       bo.redrive,
		MaxInFlight:   cfg.Pipeline.MaxInFlight,
		ShutdownGrace: cfg.Pipeline.ShutdownGrace,
		Logger:        logger.With("component", "pipeline"),
		Observe: func(c pipeline.Counts, d time.Duration, err error) {
			rec.BatchDone(telemetry.BatchCounts(c), d, err)
		},
	})
	ok = true
	return ex, nil
}

// Prepare checks at start that what the sinks need is in place (index
// templates, ILM or ISM policy, topic), installing it first where the config says
// so. Its errors say what to do.
func Prepare(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	if o := cfg.Output.Elasticsearch; o.Enabled {
		if o.SetupOnStart {
			if _, err := elasticsearch.Setup(ctx, o.Config, logger.With("component", "sink.elasticsearch")); err != nil {
				return fmt.Errorf("output.elasticsearch setup: %w", err)
			}
		} else if err := elasticsearch.Check(ctx, o.Config); err != nil {
			return fmt.Errorf("output.elasticsearch: %w", err)
		}
	}
	if o := cfg.Output.OpenSearch; o.Enabled {
		if o.SetupOnStart {
			if _, err := opensearch.Setup(ctx, o.Config, logger.With("component", "sink.opensearch")); err != nil {
				return fmt.Errorf("output.opensearch setup: %w", err)
			}
		} else if err := opensearch.Check(ctx, o.Config); err != nil {
			return fmt.Errorf("output.opensearch: %w", err)
		}
	}
	if o := cfg.Output.Kafka; o.Enabled {
		if err := kafka.Check(ctx, o.Config); err != nil {
			return fmt.Errorf("output.kafka: %w", err)
		}
	}
	return nil
}

// Setup installs what the enabled sinks need: the Elasticsearch ILM policy
// and templates, the OpenSearch templates and ISM policy, the Kafka topic.
// Running it again changes nothing.
func Setup(ctx context.Context, cfg config.Config, logger *slog.Logger, report io.Writer) error {
	did := false
	if o := cfg.Output.Elasticsearch; o.Enabled {
		changed, err := elasticsearch.Setup(ctx, o.Config, logger.With("component", "sink.elasticsearch"))
		if err != nil {
			return fmt.Errorf("output.elasticsearch setup: %w", err)
		}
		if changed {
			fmt.Fprintln(report, "elasticsearch: installed ILM policy and templates")
		} else {
			fmt.Fprintln(report, "elasticsearch: already up to date")
		}
		did = true
	}
	if o := cfg.Output.OpenSearch; o.Enabled {
		res, err := opensearch.Setup(ctx, o.Config, logger.With("component", "sink.opensearch"))
		if err != nil {
			return fmt.Errorf("output.opensearch setup: %w", err)
		}
		switch {
		case res.NoISM != "" && res.Changed:
			fmt.Fprintln(report, "opensearch: installed templates; no ISM policy: "+res.NoISM+", so indices are not deleted by age")
		case res.NoISM != "":
			fmt.Fprintln(report, "opensearch: templates already up to date; no ISM policy: "+res.NoISM+", so indices are not deleted by age")
		case res.Changed:
			fmt.Fprintln(report, "opensearch: installed ISM policy and templates")
		default:
			fmt.Fprintln(report, "opensearch: already up to date")
		}
		did = true
	}
	if o := cfg.Output.Kafka; o.Enabled {
		if err := kafka.Setup(ctx, o.Config, logger.With("component", "sink.kafka")); err != nil {
			return fmt.Errorf("output.kafka setup: %w", err)
		}
		fmt.Fprintf(report, "kafka: topic %s ready\n", o.Topic)
		did = true
	}
	if !did {
		fmt.Fprintln(report, "nothing to set up: none of output.elasticsearch, output.opensearch and output.kafka is enabled")
	}
	return nil
}

// Logger returns the process logger: JSON unless the destination is a
// terminal (or as configured), with every secret of cfg and every
// secret-looking value redacted, and repeated identical records
// summarised. The handler's Run writes those summaries; Flush the rest.
func Logger(cfg config.Config, w io.Writer) (*slog.Logger, *logging.Handler) {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	logger, h := logging.New(w, cfg.Log.Format, level, logging.Options{RepeatInterval: cfg.Telemetry.LogRepeatInterval})
	h.Redactor().AddStrings(secret.In(cfg)...)
	return logger, h
}
