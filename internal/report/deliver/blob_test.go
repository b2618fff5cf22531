package deliver

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/sspr-exporter/sspr-exporter/internal/azcred"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/azurite"
)

// TestBlobDeliversToAzurite uploads to a container that does not exist
// yet (created on the way) and then again over the same names.
func TestBlobDeliversToAzurite(t *testing.T) {
	az := azurite.Start(t)
	cfg := BlobConfig{ConnectionString: secret.New(az.ConnectionString()), Container: "sspr-reports", Prefix: "weekly/"}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	b, err := NewBlob(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.Describe(), "AccountKey") {
		t.Errorf("Describe reveals the key: %s", b.Describe())
	}
	d := writeDelivery(t)
	for range 2 {
		if err := b.Deliver(context.Background(), d); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
	}
	cc, err := container.NewClientFromConnectionString(az.ConnectionString(), "sspr-reports", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tt := range []struct {
		file, contentType string
	}{
		{d.Report, "text/csv; charset=utf-8"},
		{d.Manifest, "application/json"},
	} {
		name := "weekly/" + filepath.Base(tt.file)
		resp, err := cc.NewBlobClient(name).DownloadStream(ctx, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		want := mustRead(t, tt.file)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs", name)
		}
		if resp.ContentType == nil || *resp.ContentType != tt.contentType {
			t.Errorf("%s: content type %v, want %s", name, resp.ContentType, tt.contentType)
		}
	}
}

// TestBlobErrorHidesKey: a refused upload's error names the container and
// not the account key.
func TestBlobErrorHidesKey(t *testing.T) {
	az := azurite.Start(t)
	const wrongKey = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="
	cs := strings.Replace(az.ConnectionString(), azurite.Key, wrongKey, 1)
	b, err := NewBlob(BlobConfig{ConnectionString: secret.New(cs), Container: "sspr-reports"})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Deliver(context.Background(), writeDelivery(t))
	if err == nil {
		t.Fatal("Deliver with a wrong key succeeded")
	}
	if !strings.Contains(err.Error(), "sspr-reports") || strings.Contains(err.Error(), wrongKey) {
		t.Errorf("error %v: want the container named and the key absent", err)
	}
}

func TestBlobValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  BlobConfig
		want string
	}{
		{"connection string", BlobConfig{ConnectionString: secret.New("UseDevelopmentStorage=true"), Container: "reports"}, ""},
		{"account url", BlobConfig{AccountURL: "https://contoso.blob.core.windows.net", Container: "reports"}, ""},
		{"neither", BlobConfig{Container: "reports"}, "account_url: set it"},
		{"both", BlobConfig{ConnectionString: secret.New("x"), AccountURL: "https://a.example", Container: "reports"}, "not both"},
		{"url with query", BlobConfig{AccountURL: "https://a.example/?sig=x", Container: "reports"}, "without a query"},
		{"credential with connection string", BlobConfig{ConnectionString: secret.New("x"), Options: azcred.Options{Kind: azcred.KindManagedIdentity}, Container: "reports"}, "credential:"},
		{"bad container", BlobConfig{AccountURL: "https://a.example", Container: "Reports"}, "container:"},
		{"absolute prefix", BlobConfig{AccountURL: "https://a.example", Container: "reports", Prefix: "/x"}, "prefix:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.cfg.Validate()
			switch {
			case tt.want == "" && len(errs) > 0:
				t.Errorf("errors %v, want none", errs)
			case tt.want != "" && (len(errs) == 0 || !strings.Contains(errs[0].Error(), tt.want)):
				t.Errorf("errors %v, want first containing %q", errs, tt.want)
			}
		})
	}
}
