// Package elasticsearch is the sink that stores ECS documents in
// Elasticsearch, exactly one copy per event: each document is a bulk
// "create" with _id = event.id into an index chosen by the event's own date,
// so a replay lands on the same index and id and is answered 409. It also
// installs and checks the ILM policy and index templates those indices need.
package elasticsearch

import (
	"errors"
	"fmt"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
)

// Granularity values for index.granularity.
const (
	Day   = bulk.Day
	Month = bulk.Month
	Year  = bulk.Year
)

// The sections shared with the OpenSearch output.
type (
	// TLSConfig configures verification of the nodes' certificates.
	TLSConfig = bulk.TLSConfig
	// IndexConfig says where documents go.
	IndexConfig = bulk.IndexConfig
	// BulkConfig bounds bulk requests.
	BulkConfig = bulk.Limits
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

	// Delivery holds tls, index, bulk, retry, request_timeout,
	// log_interval and skip_setup_check (which skips the ILM policy and
	// template checks).
	bulk.Delivery

	ILM ILMConfig `toml:"ilm"`
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
		Addresses: []string{"https://localhost:9200"},
		Delivery:  bulk.DefaultDelivery(),
		ILM:       ILMConfig{RetentionDays: 400},
	}
}

// Validate returns every problem of the configuration.
func (c Config) Validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if c.CloudID == "" && len(c.Addresses) == 0 {
		add("addresses: set at least one node URL, or cloud_id")
	}
	errs = append(errs, bulk.ValidateAddresses(c.Addresses)...)
	auth := 0
	for _, set := range []bool{!c.APIKey.IsZero(), c.Username != "", !c.BearerToken.IsZero()} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		add("api_key: set only one of api_key, username/password, bearer_token")
	}
	errs = append(errs, bulk.ValidateBasicAuth(c.Username, !c.Password.IsZero())...)
	errs = append(errs, c.Delivery.Validate()...)
	if c.ILM.RetentionDays < 1 {
		add("ilm.retention_days: must be at least 1")
	}
	return errs
}

func invalid(errs []error) error {
	return fmt.Errorf("elasticsearch config: %w", errors.Join(errs...))
}
