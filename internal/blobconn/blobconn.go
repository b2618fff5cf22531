// Package blobconn reaches one Azure Blob container, for the archive reader
// of the backfill and the report delivery: addressed by a storage
// connection string, or by the account's blob service URL with a Microsoft
// Entra credential.
package blobconn

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/sspr-exporter/sspr-exporter/internal/azcred"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// Account is where a container is and how to sign in to it.
type Account struct {
	ConnectionString secret.String
	AccountURL       string
	Credential       azcred.Options
	Container        string
}

var containerRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9]|-[a-z0-9]){2,62}$`)

// Validate returns every problem of the address, each starting with its
// key. That one of connection_string and account_url is set is left to the
// caller: a section may be optional as a whole.
func (a Account) Validate() []error {
	var errs []error
	add := func(format string, v ...any) { errs = append(errs, fmt.Errorf(format, v...)) }
	if !a.ConnectionString.IsZero() && a.AccountURL != "" {
		add("account_url: set either it or connection_string, not both")
	}
	if a.AccountURL != "" {
		if u, err := url.Parse(a.AccountURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
			add("account_url: must be a blob service URL like https://contoso.blob.core.windows.net, without a query")
		}
	}
	if !a.ConnectionString.IsZero() && a.Credential != (azcred.Options{}) {
		add("credential: the credential settings are used with account_url, not with connection_string")
	} else {
		errs = append(errs, a.Credential.Validate()...)
	}
	if !containerRE.MatchString(a.Container) {
		add("container: %q is not a container name (3 to 63 lowercase letters, digits and single hyphens)", a.Container)
	}
	return errs
}

// Client returns a client of the container over hc, with the SDK's retry
// settings retry; it requests nothing yet.
func (a Account) Client(hc *http.Client, retry policy.RetryOptions) (*container.Client, error) {
	opts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc, Retry: retry}}
	if !a.ConnectionString.IsZero() {
		cc, err := container.NewClientFromConnectionString(a.ConnectionString.Reveal(), a.Container, opts)
		if err != nil {
			// The SDK's message may quote the string.
			return nil, errors.New("connection_string: not a valid storage connection string")
		}
		return cc, nil
	}
	cred, err := azcred.New(a.Credential, hc)
	if err != nil {
		return nil, err
	}
	cc, err := container.NewClient(strings.TrimRight(a.AccountURL, "/")+"/"+a.Container, cred, opts)
	if err != nil {
		return nil, fmt.Errorf("account_url: %w", err)
	}
	return cc, nil
}

// Redactor hides the account's secrets.
func (a Account) Redactor() *secret.Redactor {
	return secret.NewRedactor(a.ConnectionString.Reveal(), a.Credential.ClientSecret.Reveal())
}

// URL is u without a SAS token or user information, to name a container
// in logs and reports.
func URL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable container URL)"
	}
	p.RawQuery, p.User = "", nil
	return p.String()
}
