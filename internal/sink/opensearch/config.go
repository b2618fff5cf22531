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

	// Delivery holds tls, index, bulk, retry, request_timeout,
	// log_interval and skip_setup_check (which skips the ISM policy and
	// template checks), as for Elasticsearch.
	bulk.Delivery

	ISM ISMConfig `toml:"ism"`
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
		Addresses: []string{"https://localhost:9200"},
		Delivery:  bulk.DefaultDelivery(),
		ISM:       ISMConfig{RetentionDays: 400},
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
	errs = append(errs, bulk.ValidateBasicAuth(c.Username, !c.Password.IsZero())...)
	errs = append(errs, c.Delivery.Validate()...)
	if c.ISM.RetentionDays < 1 {
		add("ism.retention_days: must be at least 1")
	}
	return errs
}

func invalid(errs []error) error {
	return fmt.Errorf("opensearch config: %w", errors.Join(errs...))
}
