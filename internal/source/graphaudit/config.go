package graphaudit

import (
	"fmt"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/azcred"
	"github.com/sspr-exporter/sspr-exporter/internal/msgraph"
	"github.com/sspr-exporter/sspr-exporter/internal/retry"
)

// Config is the [backfill.graph] section: how to reach Microsoft Graph
// and how to page through the audit log.
type Config struct {
	// The credential: credential, tenant_id, client_id, client_secret,
	// client_certificate, client_certificate_password,
	// federated_token_file, authority_host, disable_instance_discovery.
	// The application needs the AuditLog.Read.All application permission.
	azcred.Options
	// Endpoint is the Graph service root for the cloud
	// (https://graph.microsoft.us for US Government L4).
	Endpoint string `toml:"endpoint"`
	// CAFile is a PEM file of CA certificates to trust, besides the
	// system's, for the authority and Graph.
	CAFile string `toml:"ca_file"`
	// Timeout bounds one request.
	Timeout time.Duration `toml:"timeout"`
	// PageSize is $top: records per page, at most 999.
	PageSize int `toml:"page_size"`
	// Slice is the length of the time slices the range is read in, each
	// checkpointed once delivered: whole hours, slices start at multiples
	// of it since 1970-01-01T00:00Z (midnight UTC for 24h).
	Slice time.Duration `toml:"slice"`
	// RequestInterval is the least time between two requests: Graph's
	// reporting APIs allow 5 requests per 10 seconds per application and
	// tenant.
	RequestInterval time.Duration `toml:"request_interval"`
	// MaxFilterTerms bounds the comparisons of one query, the two on
	// activityDateTime included; the catalog is split into several
	// queries beyond it.
	MaxFilterTerms int `toml:"max_filter_terms"`
	// MaxAttempts bounds the tries of one request that fails for a
	// reason that may pass (a server error, no answer); throttled
	// answers (429, 503) are waited out as Graph asks and do not count.
	MaxAttempts int `toml:"max_attempts"`
	// Retry is the wait between such tries, and after a throttled answer
	// that names none.
	Retry retry.Config `toml:"retry"`
}

// DefaultConfig returns the defaults of the section.
func DefaultConfig() Config {
	return Config{
		Endpoint:        msgraph.DefaultEndpoint,
		Timeout:         time.Minute,
		PageSize:        999,
		Slice:           24 * time.Hour,
		RequestInterval: 2 * time.Second,
		MaxFilterTerms:  15,
		MaxAttempts:     10,
		Retry:           retry.Config{InitialBackoff: time.Second, MaxBackoff: 2 * time.Minute},
	}
}

// Validate returns every problem of the section. The defaults are valid:
// without credentials set, the default chain is used.
func (c Config) Validate() []error {
	errs := c.Options.Validate()
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if err := azcred.HTTPSURL(c.Endpoint); err != nil {
		add("endpoint: %v", err)
	}
	if c.Timeout <= 0 {
		add("timeout: must be positive (got %s)", c.Timeout)
	}
	if c.PageSize < 1 || c.PageSize > 999 {
		add("page_size: must be between 1 and 999 (got %d)", c.PageSize)
	}
	if c.Slice < time.Hour || c.Slice > 31*24*time.Hour || c.Slice%time.Hour != 0 {
		add("slice: must be whole hours, from 1h to 744h (got %s)", c.Slice)
	}
	if c.RequestInterval < 0 {
		add("request_interval: must not be negative (got %s)", c.RequestInterval)
	}
	if c.MaxFilterTerms < 3 || c.MaxFilterTerms > 50 {
		add("max_filter_terms: must be between 3 and 50 (got %d)", c.MaxFilterTerms)
	}
	if c.MaxAttempts < 1 {
		add("max_attempts: must be at least 1 (got %d)", c.MaxAttempts)
	}
	for _, e := range c.Retry.Validate() {
		errs = append(errs, fmt.Errorf("retry.%w", e))
	}
	return errs
}
