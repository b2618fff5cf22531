package deliver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/sspr-exporter/sspr-exporter/internal/azcred"
	"github.com/sspr-exporter/sspr-exporter/internal/blobconn"
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

// account is the container the section names.
func (c BlobConfig) account() blobconn.Account {
	return blobconn.Account{ConnectionString: c.ConnectionString, AccountURL: c.AccountURL, Credential: c.Options, Container: c.Container}
}

// Validate returns every problem of the section, each starting with its key.
func (c BlobConfig) Validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.ConnectionString.IsZero() && c.AccountURL == "" {
		add("account_url: set it or connection_string")
	}
	errs = append(errs, c.account().Validate()...)
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
	cc, err := cfg.account().Client(hc, policy.RetryOptions{})
	if err != nil {
		return nil, err
	}
	return &Blob{
		client:   cc,
		prefix:   cfg.Prefix,
		describe: "azblob " + blobconn.URL(cc.URL()),
		redactor: cfg.account().Redactor(),
	}, nil
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
