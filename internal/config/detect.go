package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/detect/settings"
	"github.com/sspr-exporter/sspr-exporter/internal/detect/webhook"
	"github.com/sspr-exporter/sspr-exporter/internal/kafkaconn"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
)

// Detect is the [detect] section: the detection rules, when run evaluates
// them, and where alerts go. The detect command uses the rules and the
// outputs whatever enabled says.
type Detect struct {
	Enabled  bool          `toml:"enabled"`  // evaluate inside run
	Interval time.Duration `toml:"interval"` // between evaluations inside run
	// Lookback is the range each evaluation inside run covers, ending now;
	// zero: the longest window of the enabled rules plus two intervals.
	Lookback        time.Duration `toml:"lookback"`
	settings.Config               // [detect.rules.<id>]
	Output          DetectOutput  `toml:"output"`
}

// DetectOutput is the [detect.output] section.
type DetectOutput struct {
	// Index writes alerts to the alerts indices through the enabled
	// Elasticsearch (else OpenSearch) output's connection; they are also
	// the record of what was sent, so nothing goes out twice.
	Index       bool           `toml:"index"`
	IndexPrefix string         `toml:"index_prefix"` // indices prefix-yyyy.MM
	KafkaTopic  string         `toml:"kafka_topic"`  // through the [output.kafka] connection
	File        string         `toml:"file"`         // NDJSON, appended; "-" is standard output
	Webhook     webhook.Config `toml:"webhook"`
}

// DefaultDetect returns the defaults: off in run, every rule enabled,
// every 5 minutes, no output.
func DefaultDetect() Detect {
	return Detect{
		Interval: 5 * time.Minute,
		Config:   settings.Default(),
		Output:   DetectOutput{IndexPrefix: "entra-sspr-alerts", Webhook: webhook.DefaultConfig()},
	}
}

// EffectiveLookback is the lookback run uses.
func (d Detect) EffectiveLookback() time.Duration {
	if d.Lookback > 0 {
		return d.Lookback
	}
	return d.Config.Longest() + 2*d.Interval
}

// Validate checks the section.
func (d Detect) Validate() []error {
	var errs []error
	if d.Interval < time.Second {
		errs = append(errs, fmt.Errorf("interval: must be at least 1s (got %s)", d.Interval))
	}
	if d.Lookback != 0 && d.Lookback < d.Config.Longest() {
		errs = append(errs, fmt.Errorf("lookback: must cover the longest window of the enabled rules, %s (got %s)", d.Config.Longest(), d.Lookback))
	}
	errs = append(errs, d.Config.Validate()...)
	o := d.Output
	if o.Index {
		for _, err := range (bulk.IndexConfig{Prefix: o.IndexPrefix, Granularity: bulk.Month, Shards: 1}).Validate() {
			errs = append(errs, fmt.Errorf("output.index_%w", err)) // prefix: ... becomes index_prefix: ...
		}
	}
	if o.KafkaTopic != "" && !kafkaconn.ValidateTopic(o.KafkaTopic) {
		errs = append(errs, fmt.Errorf("output.kafka_topic: %q is not a valid topic name", o.KafkaTopic))
	}
	errs = append(errs, prefixAll("output.webhook", o.Webhook.Validate())...)
	return errs
}

// detectChecks are the checks of [detect] that need other sections.
func (c Config) detectChecks() []error {
	var errs []error
	o := c.Detect.Output
	if o.Index && !c.Output.Elasticsearch.Enabled && !c.Output.OpenSearch.Enabled {
		errs = append(errs, errors.New("detect.output.index: needs [output.elasticsearch] or [output.opensearch] enabled, whose connection it uses"))
	}
	if o.KafkaTopic != "" && !c.Output.Kafka.Enabled {
		errs = append(errs, errors.New("detect.output.kafka_topic: needs [output.kafka] enabled, whose connection it uses"))
	}
	if c.Detect.Enabled && !c.Output.Elasticsearch.Enabled && !c.Output.OpenSearch.Enabled {
		errs = append(errs, errors.New("detect.enabled: run reads the rules' events from [output.elasticsearch] or [output.opensearch], and neither is enabled (use the detect command with --input for files)"))
	}
	if c.Detect.Enabled && !o.Index && o.KafkaTopic == "" && o.File == "" && o.Webhook.URL == "" {
		errs = append(errs, errors.New("detect.output: enabled detection needs an output: index, kafka_topic, file or webhook.url"))
	}
	return errs
}
