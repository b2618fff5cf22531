// Package opensearch is the sink that stores ECS documents in OpenSearch,
// exactly one copy per event, with the delivery contract of the
// Elasticsearch output (the same core, internal/sink/bulk): each document
// is a bulk "create" with _id = event.id into an index chosen by the
// event's own date, so a replay lands on the same index and id and is
// answered 409. It also installs and checks the index templates and, where
// the Index State Management plugin runs, the ISM policy.
package opensearch

import (
	"errors"
	"fmt"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
)

// Config configures the OpenSearch sink, Setup and Check.
type Config struct {
	// Addresses are node URLs (http or https).
	Addresses []string `toml:"addresses"`
	// Username and Password are basic-auth credentials (the security
	// plugin's internal users; on Amazon OpenSearch Service, fine-grained
	// access control's).
	Username string        `toml:"username"`
	Password secret.String `toml:"password"`
	// BearerToken is sent as "Authorization: Bearer" (the security
	// plugin's JWT authentication).
	BearerToken secret.String `toml:"bearer_token"`

	TLS   bulk.TLSConfig   `toml:"tls"`
	Index bulk.IndexConfig `toml:"index"`
	Bulk  bulk.Limits      `toml:"bulk"`
	Retry retry.Config     `toml:"retry"`
	ISM   ISMConfig        `toml:"ism"`

	// RequestTimeout bounds one HTTP request (one bulk attempt).
	RequestTimeout time.Duration `toml:"request_timeout"`
	// LogInterval is how often a persisting failure is logged again.
	LogInterval time.Duration `toml:"log_interval"`
	// SkipSetupCheck makes Check skip the ISM policy and template checks,
	// for writer users that may not read them; the node and the
	// credentials are still checked.
	SkipSetupCheck bool `toml:"skip_setup_check"`
}

// ISMConfig configures the Index State Management policy Setup installs.
type ISMConfig struct {
	// RetentionDays is the age at which ISM deletes an index. ISM counts
	// it from the index's creation (see docs/opensearch.md, Retention);
	// writes of events whose bucket is already that old are counted
	// (Stats.PastRetention) and warned about.
	RetentionDays int `toml:"retention_days"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Addresses:      []string{"https://localhost:9200"},
		Index:          bulk.DefaultIndex,
		Bulk:           bulk.DefaultLimits,
		Retry:          bulk.DefaultRetry,
		ISM:            ISMConfig{RetentionDays: 400},
		RequestTimeout: 60 * time.Second,
		LogInterval:    30 * time.Second,
	}
}

// Validate returns every problem of the configuration.
func (c Config) Validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if len(c.Addresses) == 0 {
		add("addresses: set at least one node URL")
	}
	errs = append(errs, bulk.ValidateAddresses(c.Addresses)...)
	if c.Username != "" && !c.BearerToken.IsZero() {
		add("bearer_token: set only one of username/password, bearer_token")
	}
	if c.Username != "" && c.Password.IsZero() {
		add("password: required with username")
	}
	if c.Username == "" && !c.Password.IsZero() {
		add("username: required with password")
	}
	errs = append(errs, bulk.Prefixed("tls", c.TLS.Validate())...)
	errs = append(errs, bulk.Prefixed("index", c.Index.Validate())...)
	errs = append(errs, bulk.Prefixed("bulk", c.Bulk.Validate())...)
	errs = append(errs, bulk.Prefixed("retry", c.Retry.Validate())...)
	if c.ISM.RetentionDays < 1 {
		add("ism.retention_days: must be at least 1")
	}
	if c.RequestTimeout <= 0 {
		add("request_timeout: must be positive")
	}
	if c.LogInterval <= 0 {
		add("log_interval: must be positive")
	}
	return errs
}

// options are the delivery settings of the sink.
func (c Config) options() bulk.Options {
	return bulk.Options{
		Index: c.Index, Limits: c.Bulk, Retry: c.Retry,
		RequestTimeout: c.RequestTimeout, LogInterval: c.LogInterval, RetentionDays: c.ISM.RetentionDays,
	}
}

func invalid(errs []error) error {
	return fmt.Errorf("opensearch config: %w", errors.Join(errs...))
}
