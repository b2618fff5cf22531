// Package elasticsearch is the sink that stores ECS documents in
// Elasticsearch, exactly one copy per event: each document is a bulk
// "create" with _id = event.id into an index chosen by the event's own date,
// so a replay lands on the same index and id and is answered 409. It also
// installs and checks the ILM policy and index templates those indices need.
package elasticsearch

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// Granularity values for index.granularity.
const (
	Day   = "day"
	Month = "month"
	Year  = "year"
)

// Config configures the Elasticsearch sink, Setup and Check.
type Config struct {
	// Addresses are node URLs (http or https); ignored when CloudID is set.
	Addresses []string `toml:"addresses"`
	// CloudID is an Elastic Cloud deployment id, instead of Addresses.
	CloudID string `toml:"cloud_id"`
	// APIKey is the base64 "id:api_key" credential Kibana shows as "encoded".
	APIKey secret.String `toml:"api_key"`
	// Username and Password are basic-auth credentials.
	Username string        `toml:"username"`
	Password secret.String `toml:"password"`
	// BearerToken is sent as "Authorization: Bearer" (service account tokens).
	BearerToken secret.String `toml:"bearer_token"`

	TLS   TLSConfig   `toml:"tls"`
	Index IndexConfig `toml:"index"`
	Bulk  BulkConfig  `toml:"bulk"`
	Retry RetryConfig `toml:"retry"`
	ILM   ILMConfig   `toml:"ilm"`

	// RequestTimeout bounds one HTTP request (one bulk attempt).
	RequestTimeout time.Duration `toml:"request_timeout"`
	// LogInterval is how often a persisting failure is logged again.
	LogInterval time.Duration `toml:"log_interval"`
	// SkipSetupCheck makes Check skip the ILM policy and template checks,
	// for writer users that may not read them; the node and the
	// credentials are still checked.
	SkipSetupCheck bool `toml:"skip_setup_check"`
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

// IndexConfig says where documents go.
type IndexConfig struct {
	// Prefix of the index names: <prefix>-yyyy.MM.dd.
	Prefix string `toml:"prefix"`
	// Granularity of the date buckets: day, month or year.
	Granularity string `toml:"granularity"`
	// Shards is index.number_of_shards in the template.
	Shards int `toml:"shards"`
}

// BulkConfig bounds bulk requests.
type BulkConfig struct {
	// MaxDocs is the most documents in one bulk request.
	MaxDocs int `toml:"max_docs"`
	// MaxBytes is the most bytes of one bulk request body (a larger single
	// document is sent alone).
	MaxBytes int `toml:"max_bytes"`
	// MaxInFlight is how many bulk requests the sink has open at once.
	MaxInFlight int `toml:"max_in_flight"`
}

// RetryConfig is the exponential backoff between attempts; retries go on
// until the caller's context ends.
type RetryConfig struct {
	InitialBackoff time.Duration `toml:"initial_backoff"`
	MaxBackoff     time.Duration `toml:"max_backoff"`
}

// ILMConfig configures the lifecycle policy Setup installs.
type ILMConfig struct {
	// RetentionDays is the age, counted from the date in the index name,
	// at which an index is deleted. Writes into an index already that old
	// are counted (Stats.PastRetention) and warned about.
	RetentionDays int `toml:"retention_days"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Addresses:      []string{"https://localhost:9200"},
		Index:          IndexConfig{Prefix: "entra-sspr", Granularity: Month, Shards: 1},
		Bulk:           BulkConfig{MaxDocs: 1000, MaxBytes: 5 << 20, MaxInFlight: 2},
		Retry:          RetryConfig{InitialBackoff: 200 * time.Millisecond, MaxBackoff: 30 * time.Second},
		ILM:            ILMConfig{RetentionDays: 400},
		RequestTimeout: 60 * time.Second,
		LogInterval:    30 * time.Second,
	}
}

// builtinPatterns are index patterns of templates Elasticsearch ships
// (data streams for logs, metrics...); an index matching one of them would
// be made a data stream or given foreign mappings.
var builtinPatterns = []string{"logs-*-*", "metrics-*-*", "traces-*-*", "synthetics-*-*", "profiling-*", ".*"}

// Validate returns every problem of the configuration.
func (c Config) Validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if c.CloudID == "" && len(c.Addresses) == 0 {
		add("addresses: set at least one node URL, or cloud_id")
	}
	for i, a := range c.Addresses {
		u, err := url.Parse(a)
		switch {
		case err != nil || u.Host == "":
			add("addresses[%d]: not a URL like https://host:9200", i)
		case u.Scheme != "http" && u.Scheme != "https":
			add("addresses[%d]: scheme must be http or https", i)
		case u.User != nil:
			// Credentials in URLs end up in logs and error messages.
			add("addresses[%d]: must not contain credentials; use username/password or api_key", i)
		}
	}
	auth := 0
	for _, set := range []bool{!c.APIKey.IsZero(), c.Username != "", !c.BearerToken.IsZero()} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		add("api_key: set only one of api_key, username/password, bearer_token")
	}
	if c.Username != "" && c.Password.IsZero() {
		add("password: required with username")
	}
	if c.Username == "" && !c.Password.IsZero() {
		add("username: required with password")
	}
	if c.TLS.CAFingerprint != "" {
		if _, err := ParseFingerprint(c.TLS.CAFingerprint); err != nil {
			add("tls.ca_fingerprint: %v", err)
		}
	}
	if c.TLS.InsecureSkipVerify && (c.TLS.CAFile != "" || c.TLS.CAFingerprint != "") {
		add("tls.insecure_skip_verify: conflicts with ca_file/ca_fingerprint")
	}

	if msg := checkPrefix(c.Index.Prefix); msg != "" {
		add("index.prefix: %s", msg)
	}
	switch c.Index.Granularity {
	case Day, Month, Year:
	default:
		add("index.granularity: must be day, month or year")
	}
	if c.Index.Shards < 1 {
		add("index.shards: must be at least 1")
	}
	if c.Bulk.MaxDocs < 1 {
		add("bulk.max_docs: must be at least 1")
	}
	if c.Bulk.MaxBytes < 1024 {
		add("bulk.max_bytes: must be at least 1024")
	}
	if c.Bulk.MaxInFlight < 1 {
		add("bulk.max_in_flight: must be at least 1")
	}
	if c.Retry.InitialBackoff <= 0 {
		add("retry.initial_backoff: must be positive")
	}
	if c.Retry.MaxBackoff < c.Retry.InitialBackoff {
		add("retry.max_backoff: must be at least retry.initial_backoff")
	}
	if c.ILM.RetentionDays < 1 {
		add("ilm.retention_days: must be at least 1")
	}
	if c.RequestTimeout <= 0 {
		add("request_timeout: must be positive")
	}
	if c.LogInterval <= 0 {
		add("log_interval: must be positive")
	}
	return errs
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
		if globMatch(pat, sample) {
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

// globMatch matches Elasticsearch index patterns. Index names hold no '/',
// so path.Match's '*' (any run of non-'/' bytes) is Elasticsearch's '*'.
func globMatch(pattern, s string) bool {
	ok, err := path.Match(pattern, s)
	return ok && err == nil
}
