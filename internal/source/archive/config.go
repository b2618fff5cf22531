package archive

import (
	"errors"
	"fmt"

	"github.com/sspr-exporter/sspr-exporter/internal/azcred"
	"github.com/sspr-exporter/sspr-exporter/internal/blobconn"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// DefaultContainer is the container Entra's diagnostic settings archive
// the AuditLogs category to.
const DefaultContainer = "insights-logs-auditlogs"

// Config is the [backfill.blob] section: the storage account holding the
// archive and how to read it.
type Config struct {
	// ConnectionString is a storage account connection string; when
	// empty, AccountURL is used with a Microsoft Entra credential (the
	// identity needs Storage Blob Data Reader on the container).
	ConnectionString secret.String `toml:"connection_string"`
	// AccountURL is the blob service URL, e.g.
	// https://contoso.blob.core.windows.net (another suffix for national
	// clouds).
	AccountURL string `toml:"account_url"`
	// The credential used with AccountURL: credential, tenant_id,
	// client_id, client_secret, client_certificate,
	// client_certificate_password, federated_token_file, authority_host,
	// disable_instance_discovery.
	azcred.Options
	Container string `toml:"container"`
	// Prefix restricts the backfill to blobs whose names start with it,
	// e.g. "tenantId=<id>/" for one tenant.
	Prefix string `toml:"prefix"`
	// Workers is how many blobs are read at once.
	Workers int `toml:"workers"`
	// MaxRetries bounds the tries of one storage request.
	MaxRetries int `toml:"max_retries"`
	// CAFile is a PEM file of CA certificates to trust, besides the
	// system's, for the account and the authority.
	CAFile string `toml:"ca_file"`
}

// DefaultConfig returns the defaults of the section.
func DefaultConfig() Config {
	return Config{Container: DefaultContainer, Workers: 4, MaxRetries: 5}
}

// account is the container the section names.
func (c Config) account() blobconn.Account {
	return blobconn.Account{ConnectionString: c.ConnectionString, AccountURL: c.AccountURL, Credential: c.Options, Container: c.Container}
}

// Validate returns every problem of the section. The defaults are valid;
// Require says what the backfill needs besides.
func (c Config) Validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	errs = append(errs, c.account().Validate()...)
	if c.Workers < 1 || c.Workers > 64 {
		add("workers: must be between 1 and 64 (got %d)", c.Workers)
	}
	if c.MaxRetries < 0 {
		add("max_retries: must not be negative (got %d)", c.MaxRetries)
	}
	return errs
}

// Require returns what the section lacks for a backfill to run.
func (c Config) Require() error {
	if c.ConnectionString.IsZero() && c.AccountURL == "" {
		return errors.New("account_url: set it (or connection_string) to the storage account holding the archive")
	}
	return nil
}
