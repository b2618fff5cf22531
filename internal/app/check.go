package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/deadletter/kafkadl"
	"github.com/sspr-exporter/sspr-exporter/internal/kafkaconn"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/elasticsearch"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/kafka"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/opensearch"
	"github.com/sspr-exporter/sspr-exporter/internal/source/eventhubs"
	filesource "github.com/sspr-exporter/sspr-exporter/internal/source/file"
	kafkasource "github.com/sspr-exporter/sspr-exporter/internal/source/kafka"

	kgo "github.com/segmentio/kafka-go"
)

// checkResult is one line of the check command's report; note, when set,
// qualifies an OK.
type checkResult struct {
	name string
	note string
	err  error
}

// CheckCmd validates the config, then tries every configured endpoint and
// prints one line per check: OK, or FAIL with what to fix.
func CheckCmd(ctx context.Context, args []string, std Std) error {
	fs := newFlags("check", "check --config FILE\n\nValidates the config, then tries every configured endpoint (input files, Event\nHubs and the checkpoint container, Elasticsearch and OpenSearch and their\ntemplates, Kafka and its topics) and prints one line per check. Exit status 0 only when all pass.", std)
	cfgPath := fs.String("config", "", configUsage)
	timeout := fs.Duration("timeout", 30*time.Second, "time each endpoint check may take")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadReporting(*cfgPath, std.Out, "FAIL config: ")
	if err != nil {
		return err
	}
	fmt.Fprintln(std.Out, "OK   config")
	failed := false
	for _, r := range runChecks(ctx, cfg, *timeout) {
		if r.err != nil {
			failed = true
			fmt.Fprintf(std.Out, "FAIL %s: %v\n", r.name, r.err)
		} else if r.note != "" {
			fmt.Fprintf(std.Out, "OK   %s: %s\n", r.name, r.note)
		} else {
			fmt.Fprintf(std.Out, "OK   %s\n", r.name)
		}
	}
	if failed {
		return &ExitError{Code: 1}
	}
	return nil
}

func runChecks(ctx context.Context, cfg config.Config, timeout time.Duration) []checkResult {
	var out []checkResult
	tryNote := func(name string, f func(ctx context.Context) (string, error)) {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		note, err := f(cctx)
		out = append(out, checkResult{name: name, note: note, err: err})
	}
	try := func(name string, f func(ctx context.Context) error) {
		tryNote(name, func(ctx context.Context) (string, error) { return "", f(ctx) })
	}
	switch cfg.Input.Type {
	case config.InputFile:
		try("input.file", func(context.Context) error {
			_, err := filesource.Resolve(cfg.Input.File.Paths, cfg.Input.File.Follow)
			return err
		})
	case config.InputEventHubs:
		// Each with its own deadline: a hub that does not answer must not
		// use up the storage check's time and make it fail too.
		ehc := cfg.Input.EventHubs
		try("input.eventhubs", func(ctx context.Context) error { return eventhubs.CheckHub(ctx, ehc) })
		tryNote("input.eventhubs.checkpoint_store", func(ctx context.Context) (string, error) { return eventhubs.CheckStore(ctx, ehc) })
	case config.InputKafka:
		try("input.kafka", func(ctx context.Context) error { return kafkasource.Check(ctx, cfg.Input.Kafka) })
	}
	if o := cfg.Output.File; o.Enabled {
		try("output.file", func(context.Context) error { return writableDir(o.Path) })
	}
	if o := cfg.Output.Elasticsearch; o.Enabled {
		try("output.elasticsearch", func(ctx context.Context) error { return elasticsearch.Check(ctx, o.Config) })
	}
	if o := cfg.Output.OpenSearch; o.Enabled {
		try("output.opensearch", func(ctx context.Context) error { return opensearch.Check(ctx, o.Config) })
	}
	if o := cfg.Output.Kafka; o.Enabled {
		try("output.kafka", func(ctx context.Context) error { return kafka.Check(ctx, o.Config) })
	}
	switch cfg.DeadLetter.Type {
	case config.DeadLetterFile:
		try("dead_letter", func(context.Context) error { return writableDir(cfg.DeadLetter.Path) })
	case config.DeadLetterKafka:
		try("dead_letter.kafka", func(ctx context.Context) error { return topicExists(ctx, cfg.DeadLetter.Kafka) })
	}
	return out
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
