// Package config loads the exporter's TOML configuration: defaults, the
// file, SSPR_* environment overrides and secret references, checked strictly
// so every problem is reported at once with the key it concerns.
//
// Order: Default(), then the file (unknown keys are errors), then the
// environment, then secret references, then Validate.
//
// Environment: every key has a variable, SSPR_ and its path upper-cased with
// '.' as '_' (output.file.max_bytes: SSPR_OUTPUT_FILE_MAX_BYTES). Values are
// parsed by the key's type: durations like "5s", booleans as true/false,
// lists comma-separated or as a TOML inline array (["a,b", "c"]).
// An array of tables is replaced whole by a TOML inline array in its own
// variable (SSPR_CLASSIFY_ACTIVITIES); its elements have no variables of
// their own. Variables that match no key are returned in Config.UnknownEnv
// to be warned about.
//
// Sections: each component owns its section's type (its Config, with
// DefaultConfig and Validate); Config holds one field per section, and the
// schema walk reads it from the file and the environment. An output's
// section also gets an "enabled" key, and an entry in Output.sections.
//
// Secrets (secret.String settings) may be written literally, or as
// "env:NAME" (the value of variable NAME) or "file:/path" (the file's
// content, trailing newline removed); the variable SSPR_<KEY>_FILE reads the
// secret from the file it names. Secret values never appear in errors.
package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter/kafkadl"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich/geoip"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich/graph"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/elasticsearch"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/file"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/kafka"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/opensearch"
	"github.com/sspr-exporter/sspr-exporter/internal/source/archive"
	"github.com/sspr-exporter/sspr-exporter/internal/source/eventhubs"
	filesource "github.com/sspr-exporter/sspr-exporter/internal/source/file"
	"github.com/sspr-exporter/sspr-exporter/internal/source/graphaudit"
	kafkasource "github.com/sspr-exporter/sspr-exporter/internal/source/kafka"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry"
)

// Config is the root of the configuration file.
type Config struct {
	Input      Input            `toml:"input"`
	Decode     Decode           `toml:"decode"`
	Classify   Classify         `toml:"classify"`
	Enrich     Enrich           `toml:"enrich"`
	Output     Output           `toml:"output"`
	DeadLetter DeadLetter       `toml:"dead_letter"`
	Pipeline   Pipeline         `toml:"pipeline"`
	Log        Log              `toml:"log"`
	Telemetry  telemetry.Config `toml:"telemetry"`
	Backfill   Backfill         `toml:"backfill"`
	Detect     Detect           `toml:"detect"`
	Reports    Reports          `toml:"reports"` // [[reports]], run on a schedule

	// UnknownEnv lists SSPR_* environment variables that name no key, for
	// the caller to warn about; they are not errors because the environment
	// is shared with other tools.
	UnknownEnv []string `toml:"-"`
}

// Backfill is the [backfill] section: the inputs of the backfill command,
// which run and replay leave aside.
type Backfill struct {
	Graph graphaudit.Config `toml:"graph"` // [backfill.graph]
	Blob  archive.Config    `toml:"blob"`  // [backfill.blob]
}

// Input is the [input] section: which source to read and its settings.
type Input struct {
	Type      string             `toml:"type"` // file, eventhubs or kafka
	File      filesource.Config  `toml:"file"`
	EventHubs eventhubs.Config   `toml:"eventhubs"`
	Kafka     kafkasource.Config `toml:"kafka"`
}

// Decode is the [decode] section.
type Decode struct {
	MaxBodyBytes     int64  `toml:"max_body_bytes"`    // larger top-level values are dead-lettered, truncated
	PreserveOriginal bool   `toml:"preserve_original"` // copy the raw record to event.original
	DefaultTenantID  string `toml:"default_tenant_id"` // tenant for records that carry none
}

// Classify is the [classify] section.
type Classify struct {
	Activities []Activity `toml:"activities"` // added to the built-in catalog
}

// Activity is one extra catalog entry, a [[classify.activities]] table:
// the part of an sspr.Activity a config sets (the catalog's own entries
// also have a category and an initiator). The decoder's catalog is built
// from them in one place, app.Decoder.
type Activity struct {
	Name   string   `toml:"name"`   // activityDisplayName, matched case-insensitively
	Action string   `toml:"action"` // event.action
	Type   []string `toml:"type"`   // event.type values
}

// Enrich is the [enrich] section: what is added to the documents from
// outside the records.
type Enrich struct {
	GeoIP geoip.Config `toml:"geoip"` // off unless a database is named
	Graph GraphEnrich  `toml:"graph"`
}

// GraphEnrich is the [enrich.graph] section.
type GraphEnrich struct {
	Enabled      bool `toml:"enabled"`
	graph.Config      // its keys sit directly in the section
}

// Validate checks the section when Graph enrichment is on; off, its
// settings are unused.
func (g GraphEnrich) Validate() []error {
	if !g.Enabled {
		return nil
	}
	return g.Config.Validate()
}

// Output is the [output] section: one sub-section per sink, each the
// sink's Config embedded with an "enabled" key beside it. At least one must
// be enabled; a disabled one is not validated, since a component's
// defaults may be incomplete on purpose (no brokers, no addresses).
type Output struct {
	File          FileOutput          `toml:"file"`
	Elasticsearch ElasticsearchOutput `toml:"elasticsearch"`
	OpenSearch    OpenSearchOutput    `toml:"opensearch"`
	Kafka         KafkaOutput         `toml:"kafka"`
}

// outputSection is one sub-section of [output].
type outputSection struct {
	key      string
	enabled  bool
	validate func() []error
}

// sections lists the outputs; a new sink adds its field to Output and its
// entry here.
func (o Output) sections() []outputSection {
	return []outputSection{
		{"file", o.File.Enabled, o.File.Config.Validate},
		{"elasticsearch", o.Elasticsearch.Enabled, o.Elasticsearch.Config.Validate},
		{"opensearch", o.OpenSearch.Enabled, o.OpenSearch.Config.Validate},
		{"kafka", o.Kafka.Enabled, o.Kafka.Config.Validate},
	}
}

// Validate checks the enabled outputs.
func (o Output) Validate() []error {
	var errs []error
	for _, s := range o.sections() {
		if s.enabled {
			errs = append(errs, prefixAll(s.key, s.validate())...)
		}
	}
	return errs
}

// enabled reports whether any output is enabled.
func (o Output) enabled() bool {
	for _, s := range o.sections() {
		if s.enabled {
			return true
		}
	}
	return false
}

// FileOutput is the [output.file] section.
type FileOutput struct {
	Enabled     bool `toml:"enabled"`
	file.Config      // its keys sit directly in the section
}

// ElasticsearchOutput is the [output.elasticsearch] section.
type ElasticsearchOutput struct {
	Enabled bool `toml:"enabled"`
	// SetupOnStart makes run install the ILM policy and templates itself
	// (as the setup command does) instead of only checking for them.
	SetupOnStart         bool `toml:"setup_on_start"`
	elasticsearch.Config      // its keys sit directly in the section
}

// OpenSearchOutput is the [output.opensearch] section.
type OpenSearchOutput struct {
	Enabled bool `toml:"enabled"`
	// SetupOnStart makes run install the templates and the ISM policy
	// itself (as the setup command does) instead of only checking for them.
	SetupOnStart      bool `toml:"setup_on_start"`
	opensearch.Config      // its keys sit directly in the section
}

// KafkaOutput is the [output.kafka] section.
type KafkaOutput struct {
	Enabled      bool `toml:"enabled"`
	kafka.Config      // its keys sit directly in the section
}

// DeadLetter is the [dead_letter] section.
type DeadLetter struct {
	Type  string         `toml:"type"`  // file or kafka
	Path  string         `toml:"path"`  // file: "-" = standard error; otherwise a file, appended
	Kafka kafkadl.Config `toml:"kafka"` // kafka: a topic, same format
}

// Pipeline is the [pipeline] section.
type Pipeline struct {
	MaxInFlight   int           `toml:"max_in_flight"` // batches in flight
	ShutdownGrace time.Duration `toml:"shutdown_grace"`
}

// Log is the [log] section.
type Log struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // auto (JSON unless a terminal), json, text
}

// Default returns the configuration used for every key the file and the
// environment leave unset.
func Default() Config {
	return Config{
		Input: Input{
			Type:      InputFile,
			File:      filesource.DefaultConfig(),
			EventHubs: eventhubs.DefaultConfig(),
			Kafka:     kafkasource.DefaultConfig(),
		},
		Decode: Decode{MaxBodyBytes: 16 << 20},
		Enrich: Enrich{Graph: GraphEnrich{Config: graph.DefaultConfig()}},
		Output: Output{
			File:          FileOutput{Enabled: true, Config: file.DefaultConfig()},
			Elasticsearch: ElasticsearchOutput{Config: elasticsearch.DefaultConfig()},
			OpenSearch:    OpenSearchOutput{Config: opensearch.DefaultConfig()},
			Kafka:         KafkaOutput{Config: kafka.DefaultConfig()},
		},
		DeadLetter: DeadLetter{Type: DeadLetterFile, Path: "-", Kafka: kafkadl.DefaultConfig()},
		Pipeline:   Pipeline{MaxInFlight: 4, ShutdownGrace: 30 * time.Second},
		Log:        Log{Level: "info", Format: "auto"},
		Telemetry:  telemetry.DefaultConfig(),
		Backfill:   Backfill{Graph: graphaudit.DefaultConfig(), Blob: archive.DefaultConfig()},
		Detect:     DefaultDetect(),
	}
}

// Input types.
const (
	InputFile      = "file"
	InputEventHubs = "eventhubs"
	InputKafka     = "kafka"
)

var inputTypes = []string{InputFile, InputEventHubs, InputKafka}

// Validate returns every problem of c, one error each, each message starting
// with the full key path. Any section (at any depth) whose type has a
// Validate() []error method is validated by it, its messages prefixed with
// the section's path; the checks that span sections follow.
func (c Config) Validate() []error {
	errs := validateTree(reflect.ValueOf(c), "")
	errs = append(errs, c.crossChecks()...)
	return errs
}

func (c Config) crossChecks() []error {
	errs := c.detectChecks()
	if !c.Output.enabled() {
		errs = append(errs, errors.New("output: at least one output must be enabled"))
	}
	// Writing two streams into one file, or reading the file the exporter
	// writes, interleaves or loops the data.
	outFile := ""
	if c.Output.File.Enabled && c.Output.File.Path != file.Stdout && c.Output.File.Path != "" {
		outFile = filepath.Clean(c.Output.File.Path)
	}
	dlFile := ""
	if c.DeadLetter.Type == DeadLetterFile && c.DeadLetter.Path != "-" && c.DeadLetter.Path != "" {
		dlFile = filepath.Clean(c.DeadLetter.Path)
		if dlFile == outFile {
			errs = append(errs, errors.New("dead_letter.path: must not be the same file as output.file.path"))
		}
	}
	if c.Input.Type == InputFile {
		for i, p := range c.Input.File.Paths {
			if p == "" || p == "-" {
				continue
			}
			cp := filepath.Clean(p)
			if cp == outFile {
				errs = append(errs, fmt.Errorf("input.file.paths[%d]: must not be the same file as output.file.path", i))
			}
			if cp == dlFile {
				errs = append(errs, fmt.Errorf("input.file.paths[%d]: must not be the same file as dead_letter.path", i))
			}
		}
	}
	return errs
}

// Validate checks the input section; only the selected type's sub-section
// is checked.
func (c Input) Validate() []error {
	var errs []error
	switch c.Type {
	case InputFile:
		errs = append(errs, prefixAll("file", c.File.Validate())...)
	case InputEventHubs:
		errs = append(errs, prefixAll("eventhubs", c.EventHubs.Validate())...)
	case InputKafka:
		errs = append(errs, prefixAll("kafka", c.Kafka.Validate())...)
	default:
		errs = append(errs, fmt.Errorf("type: must be one of %s (got %q)", strings.Join(inputTypes, ", "), c.Type))
	}
	return errs
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Validate checks the decode section.
func (c Decode) Validate() []error {
	var errs []error
	if c.MaxBodyBytes < 1 {
		errs = append(errs, fmt.Errorf("max_body_bytes: must be at least 1 (got %d)", c.MaxBodyBytes))
	}
	if c.DefaultTenantID != "" && !guidRE.MatchString(c.DefaultTenantID) {
		errs = append(errs, fmt.Errorf("default_tenant_id: must be a tenant GUID like 00000000-0000-0000-0000-000000000000 (got %q)", c.DefaultTenantID))
	}
	return errs
}

var actionRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// EventTypes are the event.type values ECS allows with event.category iam.
var EventTypes = []string{"admin", "change", "creation", "deletion", "group", "info", "user"}

// Validate checks the extra catalog entries.
func (c Classify) Validate() []error {
	var errs []error
	names := map[string]int{}
	for i, a := range c.Activities {
		p := fmt.Sprintf("activities[%d]", i)
		name := strings.ToLower(strings.TrimSpace(a.Name))
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("%s.name: must not be empty", p))
		case name != strings.ToLower(a.Name):
			errs = append(errs, fmt.Errorf("%s.name: must not start or end with spaces", p))
		}
		if j, dup := names[name]; dup && name != "" {
			errs = append(errs, fmt.Errorf("%s.name: duplicate of activities[%d].name (names match case-insensitively)", p, j))
		} else {
			names[name] = i
		}
		if !actionRE.MatchString(a.Action) {
			errs = append(errs, fmt.Errorf("%s.action: must be lowercase letters and digits in words joined by '-' (got %q)", p, a.Action))
		}
		if len(a.Type) == 0 {
			errs = append(errs, fmt.Errorf("%s.type: must list at least one of %s", p, strings.Join(EventTypes, ", ")))
		}
		seen := map[string]bool{}
		for j, t := range a.Type {
			switch {
			case !slices.Contains(EventTypes, t):
				errs = append(errs, fmt.Errorf("%s.type[%d]: must be one of %s (got %q)", p, j, strings.Join(EventTypes, ", "), t))
			case seen[t]:
				errs = append(errs, fmt.Errorf("%s.type[%d]: duplicate %q", p, j, t))
			}
			seen[t] = true
		}
	}
	return errs
}

// Validate checks the dead-letter section.
func (c DeadLetter) Validate() []error {
	switch c.Type {
	case DeadLetterFile:
		if c.Path == "" {
			return []error{errors.New(`path: must not be empty (use "-" for standard error)`)}
		}
	case DeadLetterKafka:
		return prefixAll("kafka", c.Kafka.Validate())
	default:
		return []error{fmt.Errorf("type: must be %s or %s (got %q)", DeadLetterFile, DeadLetterKafka, c.Type)}
	}
	return nil
}

// Dead-letter output types.
const (
	DeadLetterFile  = "file"
	DeadLetterKafka = "kafka"
)

// Validate checks the pipeline section.
func (c Pipeline) Validate() []error {
	var errs []error
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("max_in_flight: must be at least 1 (got %d)", c.MaxInFlight))
	}
	if c.ShutdownGrace < 0 {
		errs = append(errs, fmt.Errorf("shutdown_grace: must not be negative (got %s)", c.ShutdownGrace))
	}
	return errs
}

// Log levels and formats.
var (
	LogLevels  = []string{"debug", "info", "warn", "error"}
	LogFormats = []string{"auto", "json", "text"}
)

// Validate checks the log section.
func (c Log) Validate() []error {
	var errs []error
	if !slices.Contains(LogLevels, c.Level) {
		errs = append(errs, fmt.Errorf("level: must be one of %s (got %q)", strings.Join(LogLevels, ", "), c.Level))
	}
	if !slices.Contains(LogFormats, c.Format) {
		errs = append(errs, fmt.Errorf("format: must be one of %s (got %q)", strings.Join(LogFormats, ", "), c.Format))
	}
	return errs
}
