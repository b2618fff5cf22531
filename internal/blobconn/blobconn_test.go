package blobconn

import (
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/sspr-exporter/sspr-exporter/internal/azcred"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		a    Account
		want string // a substring of the one problem, "" for none
	}{
		{"connection string", Account{ConnectionString: secret.New("UseDevelopmentStorage=true"), Container: "logs"}, ""},
		{"account url", Account{AccountURL: "https://contoso.blob.core.windows.net", Container: "logs"}, ""},
		{"both", Account{ConnectionString: secret.New("x"), AccountURL: "https://a.example", Container: "logs"}, "not both"},
		{"url with a query", Account{AccountURL: "https://a.example/?sig=x", Container: "logs"}, "without a query"},
		{"not a url", Account{AccountURL: "a.example", Container: "logs"}, "account_url:"},
		{"credential with a connection string", Account{ConnectionString: secret.New("x"), Credential: azcred.Options{Kind: azcred.KindManagedIdentity}, Container: "logs"}, "credential:"},
		{"upper-case container", Account{AccountURL: "https://a.example", Container: "Logs"}, "container:"},
		{"double hyphen", Account{AccountURL: "https://a.example", Container: "a--b"}, "container:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := c.a.Validate()
			switch {
			case c.want == "" && len(errs) > 0:
				t.Fatalf("problems %v, want none", errs)
			case c.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), c.want)):
				t.Fatalf("problems %v, want one with %q", errs, c.want)
			}
		})
	}
}

func TestClientHidesTheConnectionString(t *testing.T) {
	const cs = "AccountName=x;AccountKey=not-base64-secret!"
	_, err := Account{ConnectionString: secret.New(cs), Container: "logs"}.Client(http.DefaultClient, policy.RetryOptions{})
	if err == nil {
		t.Fatal("a connection string with a key that is not base64 was accepted")
	}
	if strings.Contains(err.Error(), "not-base64-secret") {
		t.Fatalf("error shows the key: %v", err)
	}
}

func TestURLDropsTokenAndUser(t *testing.T) {
	got := URL("https://u:p@acct.blob.core.windows.net/logs?sv=2024&sig=abc")
	if got != "https://acct.blob.core.windows.net/logs" {
		t.Fatalf("URL = %q", got)
	}
}
