package bulk

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/retry"
)

// Granularity values for index.granularity.
const (
	Day   = "day"
	Month = "month"
	Year  = "year"
)

// IndexConfig says where documents go.
type IndexConfig struct {
	// Prefix of the index names: <prefix>-yyyy.MM.dd.
	Prefix string `toml:"prefix"`
	// Granularity of the date buckets: day, month or year.
	Granularity string `toml:"granularity"`
	// Shards is index.number_of_shards in the template.
	Shards int `toml:"shards"`
}

// Limits bound bulk requests.
type Limits struct {
	// MaxDocs is the most documents in one bulk request.
	MaxDocs int `toml:"max_docs"`
	// MaxBytes is the most bytes of one bulk request body (a larger single
	// document is sent alone).
	MaxBytes int `toml:"max_bytes"`
	// MaxInFlight is how many bulk requests the sink has open at once.
	MaxInFlight int `toml:"max_in_flight"`
}

// TLSConfig configures verification of the nodes' certificates.
type TLSConfig struct {
	// CAFile is a PEM file of CA certificates to trust besides the system's.
	CAFile string `toml:"ca_file"`
	// CAFingerprint is the SHA-256 fingerprint (hex, colons allowed) of a
	// certificate in the node's chain, as printed by Elasticsearch on first
	// start; that certificate is then trusted as the root, and the node's
	// certificate must still be issued for the URL's host name or IP
	// address.
	CAFingerprint string `toml:"ca_fingerprint"`
	// InsecureSkipVerify turns verification off. Never in production.
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
}

// Options are the settings of a Sink, taken from its output's config.
type Options struct {
	Index  IndexConfig
	Limits Limits
	Retry  retry.Config
	// RequestTimeout bounds one HTTP request (one bulk attempt).
	RequestTimeout time.Duration
	// LogInterval is how often a persisting failure is logged again.
	LogInterval time.Duration
	// RetentionDays is the age, counted from the date in the index name,
	// past which writes are counted and warned about.
	RetentionDays int
}

// DefaultIndex, DefaultLimits and DefaultRetry are the defaults of both
// search outputs.
var (
	DefaultIndex  = IndexConfig{Prefix: "entra-sspr", Granularity: Month, Shards: 1}
	DefaultLimits = Limits{MaxDocs: 1000, MaxBytes: 5 << 20, MaxInFlight: 2}
	DefaultRetry  = retry.Config{InitialBackoff: 200 * time.Millisecond, MaxBackoff: 30 * time.Second}
)

// Delivery are the settings both search outputs share, embedded in each
// output's config (their keys sit directly in its section).
type Delivery struct {
	TLS   TLSConfig    `toml:"tls"`
	Index IndexConfig  `toml:"index"`
	Bulk  Limits       `toml:"bulk"`
	Retry retry.Config `toml:"retry"`

	// RequestTimeout bounds one HTTP request (one bulk attempt).
	RequestTimeout time.Duration `toml:"request_timeout"`
	// LogInterval is how often a persisting failure is logged again.
	LogInterval time.Duration `toml:"log_interval"`
	// SkipSetupCheck makes Check skip the lifecycle policy and template
	// checks, for writer users that may not read them; the node and the
	// credentials are still checked.
	SkipSetupCheck bool `toml:"skip_setup_check"`
}

// DefaultDelivery returns the defaults.
func DefaultDelivery() Delivery {
	return Delivery{Index: DefaultIndex, Bulk: DefaultLimits, Retry: DefaultRetry, RequestTimeout: 60 * time.Second, LogInterval: 30 * time.Second}
}

// Validate returns the problems of d, each starting with its key.
func (d Delivery) Validate() []error {
	var errs []error
	errs = append(errs, Prefixed("tls", d.TLS.Validate())...)
	errs = append(errs, Prefixed("index", d.Index.Validate())...)
	errs = append(errs, Prefixed("bulk", d.Bulk.Validate())...)
	errs = append(errs, Prefixed("retry", d.Retry.Validate())...)
	if d.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("request_timeout: must be positive"))
	}
	if d.LogInterval <= 0 {
		errs = append(errs, fmt.Errorf("log_interval: must be positive"))
	}
	return errs
}

// Options are the settings of a Sink delivering as d says, warning about
// writes past retentionDays.
func (d Delivery) Options(retentionDays int) Options {
	return Options{
		Index: d.Index, Limits: d.Bulk, Retry: d.Retry,
		RequestTimeout: d.RequestTimeout, LogInterval: d.LogInterval, RetentionDays: retentionDays,
	}
}

// ValidateBasicAuth checks that a username and a password come together.
func ValidateBasicAuth(username string, passwordSet bool) []error {
	switch {
	case username != "" && !passwordSet:
		return []error{fmt.Errorf("password: required with username")}
	case username == "" && passwordSet:
		return []error{fmt.Errorf("username: required with password")}
	}
	return nil
}

// builtinPatterns are index patterns of templates Elasticsearch ships
// (data streams for logs, metrics...); an index matching one of them would
// be made a data stream or given foreign mappings.
var builtinPatterns = []string{"logs-*-*", "metrics-*-*", "traces-*-*", "synthetics-*-*", "profiling-*", ".*"}

// ValidateAddresses checks node URLs; each message starts with its key.
func ValidateAddresses(addrs []string) []error {
	var errs []error
	for i, a := range addrs {
		u, err := url.Parse(a)
		switch {
		case err != nil || u.Host == "":
			errs = append(errs, fmt.Errorf("addresses[%d]: not a URL like https://host:9200", i))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("addresses[%d]: scheme must be http or https", i))
		case u.User != nil:
			// Credentials in URLs end up in logs and error messages.
			errs = append(errs, fmt.Errorf("addresses[%d]: must not contain credentials; use username/password or api_key", i))
		}
	}
	return errs
}

// Validate returns the problems of c, each starting with its key under
// [*.tls].
func (c TLSConfig) Validate() []error {
	var errs []error
	if c.CAFingerprint != "" {
		if _, err := ParseFingerprint(c.CAFingerprint); err != nil {
			errs = append(errs, fmt.Errorf("ca_fingerprint: %v", err))
		}
	}
	if c.InsecureSkipVerify && (c.CAFile != "" || c.CAFingerprint != "") {
		errs = append(errs, fmt.Errorf("insecure_skip_verify: conflicts with ca_file/ca_fingerprint"))
	}
	return errs
}

// Validate returns the problems of c, each starting with its key under
// [*.index].
func (c IndexConfig) Validate() []error {
	var errs []error
	if msg := checkPrefix(c.Prefix); msg != "" {
		errs = append(errs, fmt.Errorf("prefix: %s", msg))
	}
	switch c.Granularity {
	case Day, Month, Year:
	default:
		errs = append(errs, fmt.Errorf("granularity: must be day, month or year"))
	}
	if c.Shards < 1 {
		errs = append(errs, fmt.Errorf("shards: must be at least 1"))
	}
	return errs
}

// Validate returns the problems of l, each starting with its key under
// [*.bulk].
func (l Limits) Validate() []error {
	var errs []error
	if l.MaxDocs < 1 {
		errs = append(errs, fmt.Errorf("max_docs: must be at least 1"))
	}
	if l.MaxBytes < 1024 {
		errs = append(errs, fmt.Errorf("max_bytes: must be at least 1024"))
	}
	if l.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("max_in_flight: must be at least 1"))
	}
	return errs
}

// Prefixed returns errs with "prefix." before each message, for the
// problems of a sub-table.
func Prefixed(prefix string, errs []error) []error {
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = fmt.Errorf("%s.%w", prefix, e)
	}
	return out
}

func checkPrefix(p string) string {
	switch {
	case p == "":
		return "must not be empty"
	case p != strings.ToLower(p):
		return "must be lowercase"
	case strings.ContainsAny(p, "\\/*?\"<>| ,#:"):
		return `must not contain any of \ / * ? " < > | space , # :`
	case strings.HasPrefix(p, "-") || strings.HasPrefix(p, "_") || strings.HasPrefix(p, "+") || strings.HasPrefix(p, "."):
		return "must not start with - _ + or ."
	case len(p) > 200:
		return "must be at most 200 bytes"
	}
	sample := p + "-2026.01.01"
	for _, pat := range builtinPatterns {
		if GlobMatch(pat, sample) {
			return fmt.Sprintf("index names %q would match the built-in template pattern %q", sample, pat)
		}
	}
	return ""
}

// ParseFingerprint decodes a SHA-256 fingerprint written as hex, with or
// without colons.
func ParseFingerprint(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("must be a SHA-256 fingerprint: 64 hex digits, colons allowed")
	}
	return b, nil
}

// GlobMatch matches index patterns. Index names hold no '/', so
// path.Match's '*' (any run of non-'/' bytes) is the engines' '*'.
func GlobMatch(pattern, s string) bool {
	ok, err := path.Match(pattern, s)
	return ok && err == nil
}
