package azcred

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/sspr-exporter/sspr-exporter/internal/msgraph"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/graphapi"
)

// selfSigned writes a self-signed certificate and its key as one PEM
// file and returns the certificate.
func selfSigned(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sspr-exporter test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})...)
	if err := os.WriteFile(path, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func token(t *testing.T, s *graphapi.Server, o Options) (string, error) {
	t.Helper()
	hc, err := HTTPClient(s.CAFile(t, t.TempDir()), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := New(o, hc)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{s.URL() + "/.default"}})
	return tok.Token, err
}

// TestEveryKindAgainstTheDouble: a client secret, a client certificate,
// workload identity and a managed identity each get a token from the
// double's authority (over TLS with its CA), naming the tenant.
func TestEveryKindAgainstTheDouble(t *testing.T) {
	s := graphapi.New(t)
	dir := t.TempDir()
	certPath := filepath.Join(dir, "app.pem")
	s.SetClientCertificate(selfSigned(t, certPath))
	tokenFile := filepath.Join(dir, "federated-token")
	if err := os.WriteFile(tokenFile, []byte("federated.jwt.value"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.SetFederatedToken("federated.jwt.value")
	t.Setenv("IDENTITY_ENDPOINT", s.URL()+"/msi/token")
	t.Setenv("IDENTITY_HEADER", graphapi.IdentityHeader)
	base := Options{TenantID: graphapi.TenantID, ClientID: graphapi.ClientID, AuthorityHost: s.URL(), DisableInstanceDiscovery: true}
	for _, c := range []struct {
		name string
		set  func(*Options)
	}{
		{"client secret", func(o *Options) { o.ClientSecret = secret.New(graphapi.ClientSecret) }},
		{"client certificate", func(o *Options) { o.CertificateFile = certPath }},
		{"workload identity", func(o *Options) { o.Kind, o.FederatedTokenFile = KindWorkloadIdentity, tokenFile }},
		{"managed identity", func(o *Options) { o.Kind, o.ClientID = KindManagedIdentity, "" }},
	} {
		o := base
		c.set(&o)
		if errs := o.Validate(); len(errs) > 0 {
			t.Errorf("%s: %v", c.name, errs)
			continue
		}
		tok, err := token(t, s, o)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := msgraph.TenantOfToken(tok); got != graphapi.TenantID {
			t.Errorf("%s: tenant %q", c.name, got)
		}
	}
	// Another certificate is refused.
	other := filepath.Join(dir, "other.pem")
	selfSigned(t, other)
	o := base
	o.CertificateFile = other
	if _, err := token(t, s, o); err == nil || !strings.Contains(err.Error(), "AADSTS700027") {
		t.Errorf("a foreign certificate: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{}, ""},
		{Options{Kind: "password"}, "credential: must be one of"},
		{Options{ClientSecret: secret.New("x"), ClientID: "0d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e"}, "tenant_id: required with client_secret"},
		{Options{Kind: KindClientSecret, TenantID: "contoso.example", ClientID: "0d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e"}, "client_secret: required"},
		{Options{ClientSecret: secret.New("x"), CertificateFile: "c.pem", TenantID: "t.example", ClientID: "0d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e"}, "not both"},
		{Options{Kind: KindManagedIdentity, ClientSecret: secret.New("x")}, "client_secret: only used with"},
		{Options{TenantID: "not a tenant!"}, "tenant_id:"},
		{Options{ClientID: "app"}, "client_id:"},
		{Options{AuthorityHost: "http://login.example"}, "authority_host: must be an https URL"},
	} {
		errs := c.o.Validate()
		var all []string
		for _, e := range errs {
			all = append(all, e.Error())
		}
		got := strings.Join(all, "; ")
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%+v: %q, want %q", c.o, got, c.want)
		}
		if strings.Contains(got, "x") && strings.Contains(got, `"x"`) {
			t.Errorf("a secret value in %q", got)
		}
	}
}

// TestBadCertificateFile: a file that is not a certificate says so,
// without its content.
func TestBadCertificateFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(p, []byte("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(Options{TenantID: "t.example", ClientID: "0d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e", CertificateFile: p}, nil)
	if err == nil || !strings.Contains(err.Error(), "no certificate and private key") || strings.Contains(err.Error(), "c2VjcmV0") {
		t.Errorf("%v", err)
	}
}
