package secret

import (
	"strings"
	"testing"
)

// Realistic leak shapes. Each secret fragment must vanish; each keep
// fragment must survive, so that a redacted line still says what failed.
var leakCases = []struct {
	name    string
	text    string
	secrets []string
	keep    []string
}{
	{
		name:    "event hubs connection string",
		text:    "eventhubs: open Endpoint=sb://contoso-audit.servicebus.windows.net/;SharedAccessKeyName=sspr-listen;SharedAccessKey=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWo=;EntityPath=entra-audit: 401 Unauthorized",
		secrets: []string{"Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWo"},
		keep:    []string{"SharedAccessKeyName=sspr-listen", "SharedAccessKey=[redacted]", "EntityPath=entra-audit", "401 Unauthorized"},
	},
	{
		name:    "event hubs connection string with SAS",
		text:    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessSignature=SharedAccessSignature sr=sb%3a%2f%2fns.servicebus.windows.net%2faudit&sig=Q1w2E3r4T5y6U7i8O9p0%2bASDFghjkl%3d&se=1798761600&skn=listen;EntityPath=audit",
		secrets: []string{"Q1w2E3r4T5y6U7i8O9p0"},
		keep:    []string{"skn=listen", "se=1798761600", "EntityPath=audit"},
	},
	{
		name:    "storage connection string",
		text:    `checkpoint store: DefaultEndpointsProtocol=https;AccountName=ssprckpt;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net`,
		secrets: []string{"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50u", "KBHBeksoGMGw"},
		keep:    []string{"AccountName=ssprckpt", "AccountKey=[redacted]", "EndpointSuffix=core.windows.net"},
	},
	{
		name:    "blob SAS URL",
		text:    `PUT https://ssprckpt.blob.core.windows.net/checkpoints/ns/hub/$default/checkpoint/0?sv=2022-11-02&ss=b&srt=co&sp=rwdlac&se=2026-12-31T00:00:00Z&spr=https&sig=AbCdEf%2BGhIjKlMnOpQrStUvWxYz0123456789%3D&comp=metadata: 403`,
		secrets: []string{"AbCdEf%2BGhIjKlMnOpQrStUvWxYz0123456789"},
		keep:    []string{"sig=[redacted]&comp=metadata", "sp=rwdlac", "ssprckpt.blob.core.windows.net/checkpoints"},
	},
	{
		name:    "kafka SASL password in an error",
		text:    `kafka sink: dial broker-1:9093: sasl: SCRAM-SHA-512 mechanism{Username:sspr-exporter Password:Kf!9x-Pq2_zz} handshake: EOF`,
		secrets: []string{"Kf!9x-Pq2_zz"},
		keep:    []string{"Username:sspr-exporter", "Password:[redacted]", "handshake: EOF"},
	},
	{
		name:    "kafka password in key=value form",
		text:    `kafka: sasl plain username=sspr password="p@ss word 42" rejected by broker`,
		secrets: []string{"p@ss word 42", "word 42"},
		keep:    []string{`password="[redacted]"`, "rejected by broker"},
	},
	{
		name:    "elasticsearch API key header",
		text:    `elasticsearch: POST /_bulk headers map[Authorization:[ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==] Content-Type:[application/x-ndjson]]: 401`,
		secrets: []string{"VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw"},
		keep:    []string{"ApiKey [redacted]", "Content-Type:[application/x-ndjson]"},
	},
	{
		name:    "API key outside a header",
		text:    `retrying with ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWky after Basic authentication failed`,
		secrets: []string{"VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWky"},
		keep:    []string{"ApiKey [redacted]", "Basic authentication failed"},
	},
	{
		name:    "bearer token",
		text:    "GET /subscriptions Authorization: Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2V2ZW50aHVicy5henVyZS5uZXQifQ.c2lnbmF0dXJlLXBhcnQ",
		secrets: []string{"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9", "c2lnbmF0dXJlLXBhcnQ"},
		keep:    []string{"Authorization: Bearer [redacted]"},
	},
	{
		name:    "bare JWT",
		text:    "token cache holds eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2V2ZW50aHVicy5henVyZS5uZXQifQ.c2lnbmF0dXJlLXBhcnQ for tenant",
		secrets: []string{"eyJhdWQiOiJodHRwczovL2V2ZW50aHVicy5henVyZS5uZXQifQ"},
		keep:    []string{"for tenant"},
	},
	{
		name:    "basic auth in URL",
		text:    `elasticsearch: Post "https://elastic:ch4ng3-me!@es-1.internal:9200/_bulk": dial tcp 10.0.0.5:9200: connect: connection refused`,
		secrets: []string{"ch4ng3-me!"},
		keep:    []string{"https://elastic:[redacted]@es-1.internal:9200/_bulk", "connection refused"},
	},
	{
		name:    "basic auth header",
		text:    `request headers: Authorization: Basic c3NwcjpodW50ZXIy`,
		secrets: []string{"c3NwcjpodW50ZXIy"},
		keep:    []string{"Basic [redacted]"},
	},
	{
		name:    "client secret in a token request body",
		text:    `azidentity: POST https://login.microsoftonline.com/x/oauth2/v2.0/token body {"client_id":"00000000-0000-0000-0000-000000000001","client_secret":"Abc8Q~d3f.Ghi_jkl-Mno","grant_type":"client_credentials"}`,
		secrets: []string{"Abc8Q~d3f.Ghi_jkl-Mno"},
		keep:    []string{`"client_secret":"[redacted]"`, `"grant_type":"client_credentials"`, "oauth2/v2.0/token"},
	},
	{
		name: "nothing secret",
		text: "event hubs partition 3 offset 4711 sequence 12: batch of 50 acknowledged; SharedAccessKeyName=listen",
		keep: []string{"event hubs partition 3 offset 4711 sequence 12: batch of 50 acknowledged; SharedAccessKeyName=listen"},
	},
}

func TestRedactLeakShapes(t *testing.T) {
	for _, c := range leakCases {
		t.Run(c.name, func(t *testing.T) {
			got := Redact(c.text)
			for _, s := range c.secrets {
				if strings.Contains(got, s) {
					t.Errorf("secret %q left in %q", s, got)
				}
			}
			for _, k := range c.keep {
				if !strings.Contains(got, k) {
					t.Errorf("%q lost from %q", k, got)
				}
			}
			if len(c.secrets) == 0 && got != c.text {
				t.Errorf("changed text without secrets: %q", got)
			}
		})
	}
}

func TestIsKey(t *testing.T) {
	secretKeys := []string{"password", "Password", "sasl.password", "SharedAccessKey", "shared_access_key", "AccountKey", "connection_string", "connectionString", "token", "access_token", "client_secret", "api_key", "apiKey", "Authorization", "sig", "sas_token", "key", "pseudonymize.key", "credentials", "private_key", "pwd"}
	plainKeys := []string{"partition", "component", "error", "url", "keyboard", "signal", "sasl_mechanism", "username", "offset", "monkey", "passage", "authority_host", "key_id", "SharedAccessKeyName", "token_url", "secret_file"}
	for _, k := range secretKeys {
		if !IsKey(k) {
			t.Errorf("IsKey(%q) = false", k)
		}
	}
	for _, k := range plainKeys {
		if IsKey(k) {
			t.Errorf("IsKey(%q) = true", k)
		}
	}
}

func TestTriggers(t *testing.T) {
	for _, s := range []string{"KEY=x", "x Password: y", "SIG=1", "Bearer", "https://", "eyJhbGci", "PaSs", "x://y"} {
		if !hasTrigger(s) {
			t.Errorf("hasTrigger(%q) = false", s)
		}
	}
	for _, s := range []string{"", "ke", "partition 3 offset 4711", "événement reçu", "ke y", ":/"} {
		if hasTrigger(s) {
			t.Errorf("hasTrigger(%q) = true", s)
		}
	}
}
