package graph

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/azcred"
	"github.com/sspr-exporter/sspr-exporter/internal/msgraph"
	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// Config is the [enrich.graph] section: how to reach Microsoft Graph and
// how long its answers are kept.
type Config struct {
	// TenantID is the tenant the application is registered in (GUID or
	// verified domain).
	TenantID string `toml:"tenant_id"`
	// ClientID and ClientSecret are the application's credentials, set
	// together. Without them the Azure default credential chain is used
	// (environment variables, workload identity, managed identity, Azure
	// CLI), which reads its own settings (AZURE_CLIENT_ID...).
	ClientID     string        `toml:"client_id"`
	ClientSecret secret.String `toml:"client_secret"`
	// AuthorityHost is the Microsoft Entra authority for national clouds
	// (e.g. https://login.microsoftonline.us/); empty is the public cloud.
	AuthorityHost string `toml:"authority_host"`
	// DisableInstanceDiscovery skips validating AuthorityHost with
	// Microsoft Entra's instance discovery: only for an authority that is
	// not a Microsoft cloud's (a private cloud, a test server).
	DisableInstanceDiscovery bool `toml:"disable_instance_discovery"`
	// Endpoint is the Graph service root for the cloud
	// (https://graph.microsoft.us for US Government L4).
	Endpoint string `toml:"endpoint"`
	// CAFile is a PEM file of CA certificates to trust, besides the
	// system's, for the authority and Graph (a TLS-inspecting proxy).
	CAFile string `toml:"ca_file"`

	// Timeout bounds one Graph request, and one token request.
	Timeout time.Duration `toml:"timeout"`
	// MaxWait is the longest a batch waits for the answers it is missing
	// before its documents go out without them; 0 never waits (answers
	// then serve the user's next events).
	MaxWait time.Duration `toml:"max_wait"`
	// CacheTTL is how long a user's groups and roles are reused.
	CacheTTL time.Duration `toml:"cache_ttl"`
	// CacheSize bounds the users kept; the least recently used go first.
	CacheSize int `toml:"cache_size"`
	// Workers is how many lookups run at once.
	Workers int `toml:"workers"`
	// Retry is the wait after a failed lookup when Graph names none
	// (Retry-After), growing with each failure in a row.
	Retry retry.Config `toml:"retry"`
}

// DefaultEndpoint is the public cloud's Graph service root.
const DefaultEndpoint = msgraph.DefaultEndpoint

// DefaultConfig returns the defaults of the section.
func DefaultConfig() Config {
	return Config{
		Endpoint:  DefaultEndpoint,
		Timeout:   10 * time.Second,
		MaxWait:   time.Second,
		CacheTTL:  time.Hour,
		CacheSize: 10000,
		Workers:   4,
		Retry:     retry.Config{InitialBackoff: time.Second, MaxBackoff: 5 * time.Minute},
	}
}

var (
	guidRE   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	domainRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$`)
)

// Validate returns every problem of the section.
func (c Config) Validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch {
	case c.TenantID == "":
		add("tenant_id: must be set (the tenant GUID or a verified domain)")
	case !guidRE.MatchString(c.TenantID) && !domainRE.MatchString(c.TenantID):
		add("tenant_id: %q is neither a tenant GUID nor a domain name", c.TenantID)
	}
	if !c.ClientSecret.IsZero() && c.ClientID == "" {
		add("client_id: must be set with client_secret")
	}
	if c.ClientSecret.IsZero() && c.ClientID != "" {
		add("client_secret: must be set with client_id (leave both out for the default credential chain)")
	}
	if c.ClientID != "" && !guidRE.MatchString(c.ClientID) {
		add("client_id: %q is not an application (client) id GUID", c.ClientID)
	}
	if c.AuthorityHost != "" {
		if err := azcred.HTTPSURL(c.AuthorityHost); err != nil {
			add("authority_host: %v", err)
		}
	}
	if err := azcred.HTTPSURL(c.Endpoint); err != nil {
		add("endpoint: %v", err)
	}
	if c.CAFile != "" && strings.TrimSpace(c.CAFile) == "" {
		add("ca_file: must be a file path or empty")
	}
	if c.Timeout <= 0 {
		add("timeout: must be positive (got %s)", c.Timeout)
	}
	if c.MaxWait < 0 {
		add("max_wait: must not be negative (got %s)", c.MaxWait)
	}
	if c.CacheTTL <= 0 {
		add("cache_ttl: must be positive (got %s)", c.CacheTTL)
	}
	if c.CacheSize < 1 {
		add("cache_size: must be at least 1 (got %d)", c.CacheSize)
	}
	if c.Workers < 1 || c.Workers > 64 {
		add("workers: must be between 1 and 64 (got %d)", c.Workers)
	}
	for _, e := range c.Retry.Validate() {
		errs = append(errs, fmt.Errorf("retry.%w", e))
	}
	return errs
}
