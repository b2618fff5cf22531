package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/detect"
	"github.com/sspr-exporter/sspr-exporter/internal/detect/alertindex"
	"github.com/sspr-exporter/sspr-exporter/internal/detect/deliver"
	"github.com/sspr-exporter/sspr-exporter/internal/detect/runner"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/elasticsearch"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/kafka"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/opensearch"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry"
)

// DetectCmd evaluates the detection rules once over a past range and
// delivers the new alerts to the configured outputs, or prints them.
func DetectCmd(ctx context.Context, args []string, std Std) error {
	fs := newFlags("detect", "detect [--config FILE] [--input FILE...] [--since 24h]\n\n"+
		"Evaluates every enabled rule of [detect.rules] over [now - since, now), reading\n"+
		"the --input files (ECS NDJSON of the file output) or else the Elasticsearch or\n"+
		"OpenSearch output, and delivers the alerts not delivered before to the outputs\n"+
		"of [detect.output]; with none, prints them as NDJSON on stdout.", std)
	cfgPath := fs.String("config", "", "config file (default $"+config.PathEnv+"; optional with --input)")
	var inputs []string
	fs.Func("input", "ECS NDJSON file to read (repeatable); without it the configured search output is read", func(s string) error {
		inputs = append(inputs, s)
		return nil
	})
	since := fs.Duration("since", 24*time.Hour, "length of the range evaluated, ending now")
	until := fs.String("until", "", "end of the range instead of now (RFC 3339)")
	if err := parse(fs, args); err != nil {
		return err
	}
	inputs = append(inputs, fs.args...)
	if *since <= 0 {
		return &UsageError{errors.New("--since must be positive")}
	}
	to := time.Now().UTC()
	if *until != "" {
		t, err := time.Parse(time.RFC3339, *until)
		if err != nil {
			return &UsageError{fmt.Errorf("--until: %w", err)}
		}
		to = t.UTC()
	}
	cfg, err := loadConfig(*cfgPath, len(inputs) > 0)
	if err != nil {
		return err
	}
	p, err := startProcess(ctx, cfg, std, false)
	if err != nil {
		return err
	}
	defer p.close(ctx)
	eng, err := detect.NewEngine(cfg.Detect.Config)
	if err != nil {
		return err
	}
	r, err := eventstore.Open(cfg, inputs)
	if err != nil {
		return &UsageError{err}
	}
	outs, err := alertOutputs(cfg, std, p.logger)
	if err != nil {
		return err
	}
	if len(outs.Outputs) == 0 && outs.Index == nil {
		f, err := deliver.OpenFile("-", std.Out, p.logger)
		if err != nil {
			return err
		}
		outs.Outputs = append(outs.Outputs, f)
	}
	from := to.Add(-*since)
	alerts, err := eng.Evaluate(ctx, r, from, to)
	if err != nil {
		_ = outs.Close(context.WithoutCancel(ctx))
		return err
	}
	fresh, err := outs.Deliver(ctx, alerts, to)
	closeErr := outs.Close(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	fmt.Fprintf(std.Err, "detect: %d alerts over [%s, %s), %d new\n", len(alerts), from.Format(time.RFC3339), to.Format(time.RFC3339), len(fresh))
	return closeErr
}

// alertOutputs opens the outputs of [detect.output].
func alertOutputs(cfg config.Config, std Std, logger *slog.Logger) (_ *deliver.Outputs, err error) {
	o := cfg.Detect.Output
	outs := &deliver.Outputs{Memory: cfg.Detect.EffectiveLookback() + cfg.Detect.Interval}
	defer func() {
		if err != nil {
			_ = outs.Close(context.Background())
		}
	}()
	if o.Index {
		if outs.Index, _, err = alertIndex(cfg); err != nil {
			return nil, err
		}
	}
	if o.File != "" {
		f, err := deliver.OpenFile(o.File, std.Out, logger)
		if err != nil {
			return nil, err
		}
		outs.Outputs = append(outs.Outputs, f)
	}
	if o.KafkaTopic != "" {
		k, err := deliver.NewKafka(cfg.Output.Kafka.Config, o.KafkaTopic)
		if err != nil {
			return nil, err
		}
		outs.Outputs = append(outs.Outputs, k)
	}
	if o.Webhook.URL != "" {
		w, err := deliver.NewWebhook(o.Webhook)
		if err != nil {
			return nil, fmt.Errorf("detect.output.%w", err)
		}
		outs.Outputs = append(outs.Outputs, w)
	}
	return outs, nil
}

// alertIndex is the alerts index on the enabled Elasticsearch output's
// connection, else the OpenSearch output's, and the engine's name.
func alertIndex(cfg config.Config) (*alertindex.Index, string, error) {
	prefix := cfg.Detect.Output.IndexPrefix
	if es := cfg.Output.Elasticsearch; es.Enabled {
		c, err := elasticsearch.NewClient(es.Config)
		if err != nil {
			return nil, "", secret.RedactError(err)
		}
		return &alertindex.Index{Client: c, Red: elasticsearch.Redactor(es.Config), Prefix: prefix}, "elasticsearch", nil
	}
	if ops := cfg.Output.OpenSearch; ops.Enabled {
		c, err := opensearch.NewClient(ops.Config)
		if err != nil {
			return nil, "", secret.RedactError(err)
		}
		return &alertindex.Index{Client: c, Red: opensearch.Redactor(ops.Config), Prefix: prefix}, "opensearch", nil
	}
	return nil, "", errors.New("detect.output.index: needs [output.elasticsearch] or [output.opensearch] enabled")
}

// setupDetect installs what [detect.output] needs: the alerts index
// templates, the alerts topic. It reports what it did to report.
func setupDetect(ctx context.Context, cfg config.Config, logger *slog.Logger, report io.Writer) (did bool, err error) {
	o := cfg.Detect.Output
	if o.Index {
		what, err := setupAlertIndex(ctx, cfg, logger)
		if err != nil {
			return false, err
		}
		fmt.Fprintf(report, "detect: %s\n", what)
		did = true
	}
	if o.KafkaTopic != "" {
		kc := cfg.Output.Kafka.Config
		kc.Topic = o.KafkaTopic
		if err := kafka.Setup(ctx, kc, logger); err != nil {
			return false, fmt.Errorf("detect.output.kafka_topic setup: %w", err)
		}
		fmt.Fprintf(report, "detect: alerts topic %s ready\n", o.KafkaTopic)
		did = true
	}
	return did, nil
}

// setupAlertIndex installs the alerts index templates and says what it did.
func setupAlertIndex(ctx context.Context, cfg config.Config, logger *slog.Logger) (string, error) {
	ix, name, err := alertIndex(cfg)
	if err != nil {
		return "", err
	}
	defer ix.Client.CloseIdleConnections()
	changed, err := ix.Setup(ctx, name, logger)
	if err != nil {
		return "", fmt.Errorf("detect.output.index setup: %w", err)
	}
	if !changed {
		return "alerts templates already up to date", nil
	}
	return "installed alerts templates " + strings.Join([]string{ix.Prefix + "@mappings", ix.Prefix}, ", "), nil
}

// startDetection starts the scheduled evaluation inside run when
// [detect] enabled; the returned func stops it and closes its outputs.
func startDetection(ctx context.Context, cfg config.Config, std Std, logger *slog.Logger, tel *telemetry.Telemetry) (func(context.Context) error, error) {
	if !cfg.Detect.Enabled {
		return func(context.Context) error { return nil }, nil
	}
	eng, err := detect.NewEngine(cfg.Detect.Config)
	if err != nil {
		return nil, err
	}
	r, err := eventstore.Open(cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	outs, err := alertOutputs(cfg, std, logger)
	if err != nil {
		return nil, err
	}
	run, err := runner.New(runner.Options{
		Engine: eng, Reader: r, Outputs: outs,
		Interval: cfg.Detect.Interval, Lookback: cfg.Detect.EffectiveLookback(),
		Logger: logger.With("component", "detect"), Registry: tel.Metrics.Registry(),
	})
	if err != nil {
		_ = outs.Close(ctx)
		return nil, err
	}
	if err := run.Start(ctx); err != nil {
		_ = outs.Close(ctx)
		return nil, err
	}
	return run.Close, nil
}
