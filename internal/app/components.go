package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/deadletter/kafkadl"
	"github.com/sspr-exporter/sspr-exporter/internal/kafkaconn"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/elasticsearch"
	filesink "github.com/sspr-exporter/sspr-exporter/internal/sink/file"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/kafka"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/opensearch"
	"github.com/sspr-exporter/sspr-exporter/internal/source/eventhubs"
	filesource "github.com/sspr-exporter/sspr-exporter/internal/source/file"
	kafkasource "github.com/sspr-exporter/sspr-exporter/internal/source/kafka"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// The components the config can name, each described once: how to build
// it and what the commands do with it. Build, Prepare, Setup and the check
// command go through these lists and nothing else; a new source, sink or
// dead-letter output is one entry here (and its section in config).

// components are every input, output and dead-letter output, each marked
// enabled as cfg says.
type components struct {
	inputs      []input
	outputs     []output
	deadLetters []deadLetterOutput
}

// check is one line of the check command: an endpoint of a component
// tried. note, when set, qualifies an OK.
type check struct {
	name string
	run  func(ctx context.Context) (note string, err error)
}

// input is one source input.type can select.
type input struct {
	name    string // input.type's value; the source is "source."+name in readiness and logs
	enabled bool
	open    func(Std, *slog.Logger) (stream.Source, error)
	checks  []check
}

// startAction is what run does with an output before it reads anything.
type startAction int

const (
	startNothing startAction = iota // opening it is its check
	startCheck                      // check that what it needs is in place
	startSetup                      // install what it needs (setup_on_start)
)

// output is one sink of [output]. Its name is the sink's in metrics, dead
// letters and logs; its readiness is "sink."+name and its section
// "output."+name.
type output struct {
	name    string
	enabled bool
	open    func(Std, *slog.Logger) (stream.Sink, error)
	start   startAction
	// setup installs what the sink needs and says what it did; nil when
	// there is nothing to install.
	setup func(context.Context, *slog.Logger) (string, error)
	check func(context.Context) error
}

func (o output) key() string { return "output." + o.name }

// deadLetterOutput is one output dead_letter.type can select.
type deadLetterOutput struct {
	key     string // its section
	enabled bool
	// open returns the writer and what closes it.
	open  func(Std, *slog.Logger) (deadletter.Writer, func(context.Context) error, error)
	check func(context.Context) error
}

// componentsOf describes every component with its settings in cfg.
func componentsOf(cfg config.Config) components {
	return components{inputs: inputs(cfg), outputs: outputs(cfg), deadLetters: deadLetters(cfg)}
}

func inputs(cfg config.Config) []input {
	in := cfg.Input
	return []input{
		{
			name:    config.InputFile,
			enabled: in.Type == config.InputFile,
			open: func(std Std, logger *slog.Logger) (stream.Source, error) {
				s, err := filesource.Open(filesource.Options{
					Paths:        in.File.Paths,
					Follow:       in.File.Follow,
					PollInterval: in.File.PollInterval,
					MaxBodyBytes: int(cfg.Decode.MaxBodyBytes),
					Stdin:        std.In,
					Logger:       logger,
				})
				if err != nil {
					// The inputs named are the user's to fix.
					return nil, &UsageError{err}
				}
				return s, nil
			},
			checks: []check{{"input.file", func(context.Context) (string, error) {
				_, err := filesource.Resolve(in.File.Paths, in.File.Follow)
				return "", err
			}}},
		},
		{
			name:    config.InputEventHubs,
			enabled: in.Type == config.InputEventHubs,
			open: func(_ Std, logger *slog.Logger) (stream.Source, error) {
				return opened[stream.Source](eventhubs.New(in.EventHubs, logger))
			},
			// Each with its own deadline: a hub that does not answer must
			// not use up the storage check's time and make it fail too.
			checks: []check{
				{"input.eventhubs", noNote(func(ctx context.Context) error { return eventhubs.CheckHub(ctx, in.EventHubs) })},
				{"input.eventhubs.checkpoint_store", func(ctx context.Context) (string, error) { return eventhubs.CheckStore(ctx, in.EventHubs) }},
			},
		},
		{
			name:    config.InputKafka,
			enabled: in.Type == config.InputKafka,
			open: func(_ Std, logger *slog.Logger) (stream.Source, error) {
				return opened[stream.Source](kafkasource.New(in.Kafka, logger))
			},
			checks: []check{{"input.kafka", noNote(func(ctx context.Context) error { return kafkasource.Check(ctx, in.Kafka) })}},
		},
	}
}

func outputs(cfg config.Config) []output {
	out := cfg.Output
	fo, es, ops, ko := out.File, out.Elasticsearch, out.OpenSearch, out.Kafka
	return []output{
		{
			name:    "file",
			enabled: fo.Enabled,
			open: func(std Std, logger *slog.Logger) (stream.Sink, error) {
				return opened[stream.Sink](filesink.New(fo.Config, logger, filesink.WithStdout(std.Out)))
			},
			check: func(context.Context) error { return writableDir(fo.Path) },
		},
		{
			name:    "elasticsearch",
			enabled: es.Enabled,
			open: func(_ Std, logger *slog.Logger) (stream.Sink, error) {
				return opened[stream.Sink](elasticsearch.New(es.Config, logger))
			},
			start: setupOrCheck(es.SetupOnStart),
			setup: func(ctx context.Context, logger *slog.Logger) (string, error) {
				changed, err := elasticsearch.Setup(ctx, es.Config, logger)
				if !changed {
					return "already up to date", err
				}
				return "installed ILM policy and templates", err
			},
			check: func(ctx context.Context) error { return elasticsearch.Check(ctx, es.Config) },
		},
		{
			name:    "opensearch",
			enabled: ops.Enabled,
			open: func(_ Std, logger *slog.Logger) (stream.Sink, error) {
				return opened[stream.Sink](opensearch.New(ops.Config, logger))
			},
			start: setupOrCheck(ops.SetupOnStart),
			setup: func(ctx context.Context, logger *slog.Logger) (string, error) {
				res, err := opensearch.Setup(ctx, ops.Config, logger)
				return openSearchSetupReport(res), err
			},
			check: func(ctx context.Context) error { return opensearch.Check(ctx, ops.Config) },
		},
		{
			name:    "kafka",
			enabled: ko.Enabled,
			open: func(_ Std, logger *slog.Logger) (stream.Sink, error) {
				return opened[stream.Sink](kafka.New(ko.Config, logger))
			},
			start: startCheck,
			setup: func(ctx context.Context, logger *slog.Logger) (string, error) {
				return fmt.Sprintf("topic %s ready", ko.Topic), kafka.Setup(ctx, ko.Config, logger)
			},
			check: func(ctx context.Context) error { return kafka.Check(ctx, ko.Config) },
		},
	}
}

func deadLetters(cfg config.Config) []deadLetterOutput {
	dl := cfg.DeadLetter
	return []deadLetterOutput{
		{
			key:     "dead_letter",
			enabled: dl.Type == config.DeadLetterFile,
			open: func(std Std, _ *slog.Logger) (deadletter.Writer, func(context.Context) error, error) {
				w, err := filesink.OpenWriter(filesink.Options{Path: dl.Path, Std: std.Err})
				if err != nil {
					return nil, nil, fmt.Errorf("dead_letter.path: %w", err)
				}
				return deadletter.NewNDJSON(w), func(context.Context) error { return w.Close() }, nil
			},
			check: func(context.Context) error { return writableDir(dl.Path) },
		},
		{
			key:     "dead_letter.kafka",
			enabled: dl.Type == config.DeadLetterKafka,
			open: func(_ Std, logger *slog.Logger) (deadletter.Writer, func(context.Context) error, error) {
				w, err := kafkadl.New(dl.Kafka, logger)
				if err != nil {
					return nil, nil, err // it names its section
				}
				return w, func(context.Context) error { return w.Close() }, nil
			},
			check: func(ctx context.Context) error { return topicExists(ctx, dl.Kafka) },
		},
	}
}

// opened returns what a component's constructor returned as the interface
// I, with no typed nil in it when the constructor failed.
func opened[I any](c I, err error) (I, error) {
	if err != nil {
		var zero I
		return zero, err
	}
	return c, nil
}

func noNote(f func(context.Context) error) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) { return "", f(ctx) }
}

func setupOrCheck(setupOnStart bool) startAction {
	if setupOnStart {
		return startSetup
	}
	return startCheck
}

func openSearchSetupReport(res opensearch.Result) string {
	switch {
	case res.NoISM != "" && res.Changed:
		return "installed templates; no ISM policy: " + res.NoISM + ", so indices are not deleted by age"
	case res.NoISM != "":
		return "templates already up to date; no ISM policy: " + res.NoISM + ", so indices are not deleted by age"
	case res.Changed:
		return "installed ISM policy and templates"
	}
	return "already up to date"
}

// andList joins items as "a, b and c".
func andList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// writableDir checks that a file output can be created: its directory
// exists and is writable. "-" is a standard stream.
func writableDir(path string) error {
	if path == "-" {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".sspr-exporter-check-*")
	if err != nil {
		return fmt.Errorf("cannot write next to %s: %w", path, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// topicExists asks the brokers for the dead-letter topic's metadata.
func topicExists(ctx context.Context, c kafkadl.Config) error {
	tr, err := kafkaconn.Transport(c.ClientID, c.Timeout, c.SASL, c.TLS)
	if err != nil {
		return err
	}
	cl := &kgo.Client{Addr: kgo.TCP(c.Brokers...), Transport: tr}
	md, err := cl.Metadata(ctx, &kgo.MetadataRequest{Topics: []string{c.Topic}})
	if err != nil {
		return fmt.Errorf("brokers %v: %w (%s)", c.Brokers, err, kafkaconn.Hint(err))
	}
	for _, t := range md.Topics {
		if t.Name == c.Topic && t.Error == nil {
			return nil
		}
	}
	return fmt.Errorf("topic %q does not exist: create it (the exporter does not create dead-letter topics)", c.Topic)
}
