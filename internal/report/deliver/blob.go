package deliver

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/sspr-exporter/sspr-exporter/internal/azcred"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// BlobConfig is a report's [reports.azblob] section: the container the
// report and its manifest are uploaded to, as block blobs named prefix +
// file name.
type BlobConfig struct {
	// ConnectionString is a storage account connection string; when
	// empty, AccountURL is used with a Microsoft Entra credential (the
	// identity needs Storage Blob Data Contributor on the container).
	ConnectionString secret.String `toml:"connection_string"`
	// AccountURL is the blob service URL, e.g.
	// https://contoso.blob.core.windows.net.
	AccountURL string `toml:"account_url"`
	// The credential used with AccountURL: credential, tenant_id,
	// client_id, client_secret, client_certificate,
	// client_certificate_password, federated_token_file, authority_host,
	// disable_instance_discovery.
	azcred.Options
	Container string `toml:"container"`
	// Prefix starts every blob name, e.g. "sspr/weekly/".
	Prefix string `toml:"prefix"`
	// CAFile is a PEM file of CA certificates to trust besides the
	// system's.
	CAFile string `toml:"ca_file"`
}

// IsSet reports whether any key of the section is set.
func (c BlobConfig) IsSet() bool { return c != (BlobConfig{}) }

var containerRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9]|-[a-z0-9]){2,62}$`)

// Validate returns every problem of the section, each starting with its key.
func (c BlobConfig) Validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch {
	case c.ConnectionString.IsZero() && c.AccountURL == "":
		add("account_url: set it or connection_string")
	case !c.ConnectionString.IsZero() && c.AccountURL != "":
		add("account_url: set either it or connection_string, not both")
	}
	if c.AccountURL != "" {
		if u, err := url.Parse(c.AccountURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
			add("account_url: must be a blob service URL like https://contoso.blob.core.windows.net, without a query")
		}
	}
	if !c.ConnectionString.IsZero() && c.Options != (azcred.Options{}) {
		add("credential: the credential settings are used with account_url, not with connection_string")
	} else {
		errs = append(errs, c.Options.Validate()...)
	}
	if !containerRE.MatchString(c.Container) {
		add("container: %q is not a container name (3 to 63 lowercase letters, digits and single hyphens)", c.Container)
	}
	if strings.HasPrefix(c.Prefix, "/") || strings.Contains(c.Prefix, "//") {
		add("prefix: must not start with '/' or contain '//' (got %q)", c.Prefix)
	}
	return errs
}

// Blob uploads deliveries to a container.
type Blob struct {
	client   *container.Client
	prefix   string
	describe string
	redactor *secret.Redactor
}

// NewBlob returns a deliverer to cfg's container; it requests nothing yet.
func NewBlob(cfg BlobConfig) (*Blob, error) {
	hc, err := azcred.HTTPClient(cfg.CAFile, 0)
	if err != nil {
		return nil, err
	}
	opts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc}}
	var cc *container.Client
	if !cfg.ConnectionString.IsZero() {
		cc, err = container.NewClientFromConnectionString(cfg.ConnectionString.Reveal(), cfg.Container, opts)
		if err != nil {
			// The SDK's message may quote the string.
			return nil, errors.New("connection_string: not a valid storage connection string")
		}
	} else {
		cred, cerr := azcred.New(cfg.Options, hc)
		if cerr != nil {
			return nil, cerr
		}
		cc, err = container.NewClient(strings.TrimRight(cfg.AccountURL, "/")+"/"+cfg.Container, cred, opts)
		if err != nil {
			return nil, fmt.Errorf("account_url: %w", err)
		}
	}
	return &Blob{
		client:   cc,
		prefix:   cfg.Prefix,
		describe: "azblob " + withoutQuery(cc.URL()),
		redactor: secret.NewRedactor(cfg.ConnectionString.Reveal(), cfg.ClientSecret.Reveal()),
	}, nil
}

// withoutQuery drops a SAS token and user information from a URL.
func withoutQuery(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable container URL)"
	}
	u.RawQuery, u.User = "", nil
	return u.String()
}

// Describe names the container, without a SAS token.
func (b *Blob) Describe() string { return b.describe }

// Deliver uploads the report, then the manifest, creating the container
// when it does not exist yet.
func (b *Blob) Deliver(ctx context.Context, d Delivery) error {
	for _, p := range d.files() {
		err := b.upload(ctx, p)
		if bloberror.HasCode(err, bloberror.ContainerNotFound) {
			if _, cerr := b.client.Create(ctx, nil); cerr != nil && !bloberror.HasCode(cerr, bloberror.ContainerAlreadyExists) {
				return b.redactor.RedactError(fmt.Errorf("%s: create container: %w", b.describe, cerr))
			}
			err = b.upload(ctx, p)
		}
		if err != nil {
			return b.redactor.RedactError(fmt.Errorf("%s: upload %s: %w", b.describe, filepath.Base(p), err))
		}
	}
	return nil
}

func (b *Blob) upload(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	ct := ContentType(path)
	bc := b.client.NewBlockBlobClient(b.prefix + filepath.Base(path))
	_, err = bc.UploadFile(ctx, f, &blockblob.UploadFileOptions{HTTPHeaders: &blob.HTTPHeaders{BlobContentType: &ct}})
	return err
}
