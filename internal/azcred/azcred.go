// Package azcred builds the Microsoft Entra token credential (azidentity)
// that a component's configuration names: an application's client secret
// or certificate, workload identity, a managed identity, or the default
// chain, for the public cloud or a national cloud's authority, and the
// HTTP client (extra CA certificates, a timeout) the credential and the
// service calls share.
package azcred

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// Credential kinds, the values of Options.Kind.
const (
	// KindAuto picks client_secret when a secret is set, client_certificate
	// when a certificate is set, and default otherwise.
	KindAuto              = ""
	KindDefault           = "default" // environment, workload identity, managed identity, Azure CLI
	KindClientSecret      = "client_secret"
	KindClientCertificate = "client_certificate"
	KindWorkloadIdentity  = "workload_identity"
	KindManagedIdentity   = "managed_identity"
)

var kinds = []string{KindDefault, KindClientSecret, KindClientCertificate, KindWorkloadIdentity, KindManagedIdentity}

// Options say which credential to build. Their TOML keys sit directly in
// the section of the component that embeds them.
type Options struct {
	// Kind is the credential: client_secret, client_certificate,
	// workload_identity, managed_identity or default; empty chooses from
	// what is set.
	Kind string `toml:"credential"`
	// TenantID is the tenant the application is registered in (GUID or
	// verified domain).
	TenantID string `toml:"tenant_id"`
	// ClientID is the application (client) id; for a managed identity, the
	// user-assigned identity's client id (empty: the system-assigned one).
	ClientID     string        `toml:"client_id"`
	ClientSecret secret.String `toml:"client_secret"`
	// CertificateFile is a PEM or PKCS#12 file holding the application's
	// certificate and its private key; CertificatePassword decrypts it.
	CertificateFile     string        `toml:"client_certificate"`
	CertificatePassword secret.String `toml:"client_certificate_password"`
	// FederatedTokenFile is the projected service account token of
	// workload identity; empty reads AZURE_FEDERATED_TOKEN_FILE.
	FederatedTokenFile string `toml:"federated_token_file"`
	// AuthorityHost is the Microsoft Entra authority for national clouds
	// (e.g. https://login.microsoftonline.us/); empty is the public cloud.
	AuthorityHost string `toml:"authority_host"`
	// DisableInstanceDiscovery skips validating AuthorityHost with
	// Microsoft Entra's instance discovery: only for an authority that is
	// not a Microsoft cloud's (a private cloud, a test server).
	DisableInstanceDiscovery bool `toml:"disable_instance_discovery"`
}

var (
	guidRE   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	domainRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$`)
)

// IsTenantID reports whether s is a tenant GUID.
func IsTenantID(s string) bool { return guidRE.MatchString(s) }

// kind is the credential the options build.
func (o Options) kind() string {
	switch {
	case o.Kind != KindAuto:
		return o.Kind
	case !o.ClientSecret.IsZero():
		return KindClientSecret
	case o.CertificateFile != "":
		return KindClientCertificate
	}
	return KindDefault
}

// Validate returns every problem, each starting with its key. Options that
// set nothing are valid: they use the default chain.
func (o Options) Validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if o.Kind != KindAuto && !slices.Contains(kinds, o.Kind) {
		add("credential: must be one of %s, or empty to choose from what is set (got %q)", strings.Join(kinds, ", "), o.Kind)
		return errs
	}
	if o.TenantID != "" && !guidRE.MatchString(o.TenantID) && !domainRE.MatchString(o.TenantID) {
		add("tenant_id: %q is neither a tenant GUID nor a domain name", o.TenantID)
	}
	if o.ClientID != "" && !guidRE.MatchString(o.ClientID) {
		add("client_id: %q is not a client id GUID", o.ClientID)
	}
	if !o.ClientSecret.IsZero() && o.CertificateFile != "" {
		add("client_certificate: set either it or client_secret, not both")
	}
	k := o.kind()
	if k == KindClientSecret || k == KindClientCertificate {
		if o.TenantID == "" {
			add("tenant_id: required with %s", k)
		}
		if o.ClientID == "" {
			add("client_id: required with %s", k)
		}
	}
	switch {
	case k == KindClientSecret && o.ClientSecret.IsZero():
		add("client_secret: required with credential = %q", k)
	case k == KindClientCertificate && o.CertificateFile == "":
		add("client_certificate: required with credential = %q", k)
	case k != KindClientSecret && !o.ClientSecret.IsZero():
		add("client_secret: only used with credential = %q", KindClientSecret)
	case k != KindClientCertificate && o.CertificateFile != "":
		add("client_certificate: only used with credential = %q", KindClientCertificate)
	}
	if o.AuthorityHost != "" {
		if err := HTTPSURL(o.AuthorityHost); err != nil {
			add("authority_host: %v", err)
		}
	}
	return errs
}

// HTTPSURL checks that s is an https URL without query or fragment.
func HTTPSURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "":
		return fmt.Errorf("%q is not a URL like https://host", s)
	case u.Scheme != "https":
		return errors.New("must be an https URL")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("must have no query or fragment")
	}
	return nil
}

// HTTPClient is the transport for the authority and the service: the
// system's roots plus the PEM certificates of caFile, and timeout per
// request (0: none).
func HTTPClient(caFile string, timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// New builds the credential, its token requests going through hc (nil:
// the SDK's default transport).
func New(o Options, hc *http.Client) (azcore.TokenCredential, error) {
	opts := azcore.ClientOptions{}
	if hc != nil {
		opts.Transport = hc
	}
	if o.AuthorityHost != "" {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: o.AuthorityHost}
	}
	switch k := o.kind(); k {
	case KindClientSecret:
		cred, err := azidentity.NewClientSecretCredential(o.TenantID, o.ClientID, o.ClientSecret.Reveal(), &azidentity.ClientSecretCredentialOptions{
			ClientOptions: opts, DisableInstanceDiscovery: o.DisableInstanceDiscovery,
		})
		return wrap(k, cred, err)
	case KindClientCertificate:
		return certificate(o, opts)
	case KindWorkloadIdentity:
		cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: opts, TenantID: o.TenantID, ClientID: o.ClientID, TokenFilePath: o.FederatedTokenFile,
			DisableInstanceDiscovery: o.DisableInstanceDiscovery,
		})
		return wrap(k, cred, err)
	case KindManagedIdentity:
		mo := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if o.ClientID != "" {
			mo.ID = azidentity.ClientID(o.ClientID)
		}
		cred, err := azidentity.NewManagedIdentityCredential(mo)
		return wrap(k, cred, err)
	default:
		cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions: opts, TenantID: o.TenantID, DisableInstanceDiscovery: o.DisableInstanceDiscovery,
		})
		return wrap("default Azure", cred, err)
	}
}

func wrap(kind string, cred azcore.TokenCredential, err error) (azcore.TokenCredential, error) {
	if err != nil {
		return nil, fmt.Errorf("%s credential: %w", strings.ReplaceAll(kind, "_", " "), secret.RedactError(err))
	}
	return cred, nil
}

func certificate(o Options, opts azcore.ClientOptions) (azcore.TokenCredential, error) {
	data, err := os.ReadFile(o.CertificateFile)
	if err != nil {
		return nil, fmt.Errorf("client_certificate: %w", err)
	}
	var pw []byte
	if !o.CertificatePassword.IsZero() {
		pw = []byte(o.CertificatePassword.Reveal())
	}
	certs, key, err := azidentity.ParseCertificates(data, pw)
	if err != nil {
		// The parser's errors name no secret, but the file is one.
		return nil, fmt.Errorf("client_certificate %s: no certificate and private key could be read (a PEM or PKCS#12 file; client_certificate_password if it is encrypted)", o.CertificateFile)
	}
	cred, err := azidentity.NewClientCertificateCredential(o.TenantID, o.ClientID, certs, key, &azidentity.ClientCertificateCredentialOptions{
		ClientOptions: opts, DisableInstanceDiscovery: o.DisableInstanceDiscovery,
	})
	return wrap(KindClientCertificate, cred, err)
}
