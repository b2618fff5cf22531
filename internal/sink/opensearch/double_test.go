package opensearch

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk/bulktest"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/esdouble"
)

// The tests of this file use the double, each for what a test node lacks
// (said in its first comment line); node_test.go has the rest.

var update = flag.Bool("update", false, "rewrite deploy/opensearch from Assets(DefaultConfig())")

const deployDir = "../../../deploy/opensearch"

func testConfig(url string) Config {
	cfg := DefaultConfig()
	cfg.Addresses = []string{url}
	cfg.Retry = retry.Config{InitialBackoff: 5 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	cfg.RequestTimeout = 10 * time.Second
	cfg.LogInterval = 200 * time.Millisecond
	return cfg
}

func newDouble(t *testing.T, o esdouble.Options) *esdouble.Double {
	o.OpenSearch = true
	d := esdouble.NewWith(o)
	t.Cleanup(d.Close)
	return d
}

func newSink(t *testing.T, cfg Config, logs *syncbuf.Buffer) *Sink {
	t.Helper()
	var l *slog.Logger
	if logs != nil {
		l = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := New(cfg, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// TestSetupInstallsTheISMPolicy: the test node has no ISM plugin. With
// ISM, setup installs the policy with the templates, once; puts indices
// that already exist under it, and indices created later get it from its
// ism_template; a new retention replaces the policy and moves the managed
// indices to it.
func TestSetupInstallsTheISMPolicy(t *testing.T) {
	d := newDouble(t, esdouble.Options{ISM: true})
	cfg := testConfig(d.URL())
	ctx := bulktest.Ctx(t)
	err := Check(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), `ISM policy "entra-sspr" is missing`) || !strings.Contains(err.Error(), `index template "entra-sspr" is missing`) {
		t.Errorf("check before setup: %v", err)
	}
	s := newSink(t, cfg, nil)
	if err := s.Write(ctx, bulktest.Events("before", 2, time.Date(2026, 10, 3, 0, 0, 0, 0, time.UTC))); err != nil {
		t.Fatal(err)
	}

	res, err := Setup(ctx, cfg, nil)
	if err != nil || !res.Changed || res.NoISM != "" {
		t.Fatalf("first setup: %+v, %v", res, err)
	}
	pol, v := d.ISMPolicy("entra-sspr")
	if v != 1 || !strings.Contains(fmt.Sprint(pol["states"]), "min_index_age:400d") || !strings.Contains(fmt.Sprint(pol["ism_template"]), "entra-sspr-*") {
		t.Errorf("policy version %d: %v", v, pol)
	}
	if got := d.ManagedBy("entra-sspr-2026.10.01"); got != "entra-sspr" {
		t.Errorf("the index that existed before setup is managed by %q", got)
	}
	puts := d.Stats().AdminPuts
	if res, err := Setup(ctx, cfg, nil); err != nil || res.Changed || d.Stats().AdminPuts != puts {
		t.Errorf("second setup: %+v, %v, %d writes", res, err, d.Stats().AdminPuts-puts)
	}
	if err := Check(ctx, cfg); err != nil {
		t.Errorf("check after setup: %v", err)
	}
	if err := s.Write(ctx, bulktest.Events("after", 2, bulktest.Nov)); err != nil {
		t.Fatal(err)
	}
	if got := d.ManagedBy("entra-sspr-2026.11.01"); got != "entra-sspr" {
		t.Errorf("an index created after setup is managed by %q", got)
	}

	cfg.ISM.RetentionDays = 30
	if err := Check(ctx, cfg); err == nil || !strings.Contains(err.Error(), "ISM policy") {
		t.Errorf("check with another retention: %v", err)
	}
	applied := d.Stats().ISMApplied
	if res, err := Setup(ctx, cfg, nil); err != nil || !res.Changed {
		t.Fatalf("setup with a new retention: %+v, %v", res, err)
	}
	if pol, v := d.ISMPolicy("entra-sspr"); v != 2 || !strings.Contains(fmt.Sprint(pol["states"]), "min_index_age:30d") {
		t.Errorf("policy after the change, version %d: %v", v, pol)
	}
	if n := d.Stats().ISMApplied - applied; n != 2 {
		t.Errorf("%d managed indices moved to the new policy, want 2", n)
	}
}

// TestSetupWithoutISM: ISM plugin absence is what the node test shows; the
// double shows that check then leaves the policy out.
func TestSetupWithoutISM(t *testing.T) {
	d := newDouble(t, esdouble.Options{})
	cfg := testConfig(d.URL())
	res, err := Setup(bulktest.Ctx(t), cfg, nil)
	if err != nil || !res.Changed || !strings.Contains(res.NoISM, "ISM plugin does not answer") {
		t.Fatalf("setup: %+v, %v", res, err)
	}
	if err := Check(bulktest.Ctx(t), cfg); err != nil {
		t.Errorf("check: %v", err)
	}
}

// TestSetupAndCheckNameTheProblem: a test node has no security plugin, so
// no 403.
func TestSetupAndCheckNameTheProblem(t *testing.T) {
	d := newDouble(t, esdouble.Options{ISM: true})
	cfg := testConfig(d.URL())
	d.Forbid(true)
	if _, err := Setup(bulktest.Ctx(t), cfg, nil); err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "ism") {
		t.Errorf("setup when forbidden: %v", err)
	}
	if err := Check(bulktest.Ctx(t), cfg); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("check when forbidden: %v", err)
	}
	cfg.SkipSetupCheck = true
	if err := Check(bulktest.Ctx(t), cfg); err != nil {
		t.Errorf("skipped check: %v", err)
	}
	d.Forbid(false)
	d.Close()
	if err := Check(bulktest.Ctx(t), cfg); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("check with no node: %v", err)
	}
}

// TestCheckRefusesElasticsearch: an Elasticsearch node cannot be an
// OpenSearch one; the double saves starting one for this.
func TestCheckRefusesElasticsearch(t *testing.T) {
	d := esdouble.New()
	defer d.Close()
	err := Check(bulktest.Ctx(t), testConfig(d.URL()))
	if err == nil || !strings.Contains(err.Error(), "[output.elasticsearch]") {
		t.Errorf("check against Elasticsearch: %v", err)
	}
}

// TestCredentialsAreSentAndNeverShown: a test node has no security plugin
// to require credentials.
func TestCredentialsAreSentAndNeverShown(t *testing.T) {
	const pw = "s3cr3t-Pa55<&>"
	const token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzc3ByIn0.c2lnbmF0dXJlLXNlY3JldA"
	for _, c := range []struct {
		name  string
		set   func(*Config)
		want  string
		forms []string
	}{
		{"basic", func(c *Config) { c.Username, c.Password = "sspr", secret.New(pw) },
			"Basic " + base64.StdEncoding.EncodeToString([]byte("sspr:"+pw)), []string{pw, base64.StdEncoding.EncodeToString([]byte("sspr:" + pw))}},
		{"bearer", func(c *Config) { c.BearerToken = secret.New(token) }, "Bearer " + token, []string{token}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDouble(t, esdouble.Options{})
			cfg := testConfig(d.URL())
			c.set(&cfg)
			d.RequireAuthorization(c.want)
			logs := &syncbuf.Buffer{}
			s := newSink(t, cfg, logs)
			if err := s.Write(bulktest.Ctx(t), bulktest.Events("auth", 3, bulktest.Nov)); err != nil {
				t.Fatalf("write with the right credentials: %v", err)
			}
			if _, err := Setup(bulktest.Ctx(t), cfg, nil); err != nil {
				t.Fatalf("setup with the right credentials: %v", err)
			}
			d.RequireAuthorization("something else")
			d.EchoRequests(401, true)
			_, setupErr := Setup(bulktest.Ctx(t), cfg, nil)
			checkErr := Check(bulktest.Ctx(t), cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			writeErr := s.Write(ctx, bulktest.Events("auth2", 1, bulktest.Nov))
			shown := fmt.Sprintf("%v|%v|%v|%v|%+v|%#v|%s", setupErr, checkErr, writeErr, s.Ready(), cfg, cfg, logs)
			for _, f := range c.forms {
				if strings.Contains(shown, f) {
					t.Errorf("%q shown:\n%s", f, shown)
				}
			}
			if !strings.Contains(shown, "Authorization: ") || s.Ready() == nil || !strings.Contains(s.Ready().Error(), "401") {
				t.Errorf("the refusal (and its echo) is not reported:\n%s", shown)
			}
		})
	}
}

// TestTLSVerification: the test nodes serve plain HTTP. The requests go
// through opensearch-go with the output's own transport.
func TestTLSVerification(t *testing.T) {
	d := esdouble.NewTLS() // only bulk requests: the flavour does not matter
	defer d.Close()
	cert := d.Certificate()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	var pemBuf bytes.Buffer
	pemBuf.WriteString("-----BEGIN CERTIFICATE-----\n")
	enc := base64.StdEncoding.EncodeToString(cert.Raw)
	for len(enc) > 64 {
		pemBuf.WriteString(enc[:64] + "\n")
		enc = enc[64:]
	}
	pemBuf.WriteString(enc + "\n-----END CERTIFICATE-----\n")
	if err := os.WriteFile(caFile, pemBuf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		tls  bulk.TLSConfig
		ok   bool
	}{
		{"system roots only", bulk.TLSConfig{}, false},
		{"ca file", bulk.TLSConfig{CAFile: caFile}, true},
		{"verification off", bulk.TLSConfig{InsecureSkipVerify: true}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(d.URL())
			cfg.TLS = c.tls
			s := newSink(t, cfg, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := s.Write(ctx, bulktest.Events("tls-"+strings.ReplaceAll(c.name, " ", "-"), 1, bulktest.Nov))
			if c.ok != (err == nil) {
				t.Errorf("write: %v, want success %v", err, c.ok)
			}
			if !c.ok && (s.Ready() == nil || !strings.Contains(s.Ready().Error(), "certificate")) {
				t.Errorf("Ready() = %v, want the TLS failure", s.Ready())
			}
		})
	}
}

// TestOutageLosesNothing: the double closes every connection on demand,
// which opensearch-go's connection handling must ride out.
func TestOutageLosesNothing(t *testing.T) {
	d := newDouble(t, esdouble.Options{})
	cfg := testConfig(d.URL())
	cfg.Bulk.MaxDocs = 50
	logs := &syncbuf.Buffer{}
	s := newSink(t, cfg, logs)
	if err := s.Write(bulktest.Ctx(t), bulktest.Events("before", 10, bulktest.Nov)); err != nil {
		t.Fatal(err)
	}
	d.SetDown(true)
	done := make(chan error, 1)
	go func() { done <- s.Write(bulktest.Ctx(t), bulktest.Events("during", 500, bulktest.Nov)) }()
	bulktest.WaitFor(t, "the sink to notice the outage", func() bool { return s.Ready() != nil })
	bulktest.WaitFor(t, "retries during the outage", func() bool { return s.Stats().BulkRequests >= 10 })
	select {
	case err := <-done:
		t.Fatalf("Write returned while the node was down: %v", err)
	default:
	}
	d.SetDown(false)
	if err := <-done; err != nil {
		t.Fatalf("write across the outage: %v", err)
	}
	if n := d.Count("*"); n != 510 {
		t.Errorf("stored %d of 510", n)
	}
	if !strings.Contains(logs.String(), "opensearch unreachable") || !strings.Contains(logs.String(), "opensearch accepts writes again") {
		t.Errorf("logs do not tell the outage and the recovery:\n%s", logs)
	}
}

// TestBadRequestFromAProxyIsRetriedNotRejected: a node's 400 is always its
// envelope; this is a proxy's page, which only a fake can send.
func TestBadRequestFromAProxyIsRetriedNotRejected(t *testing.T) {
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("<html><body><h1>400 Bad Request</h1>Request Header Or Cookie Too Large</body></html>"))
	}))
	defer p.Close()
	cfg := testConfig(p.URL)
	s := newSink(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.Write(ctx, bulktest.Events("proxy400", 5, bulktest.Nov))
	if _, rejected := stream.AsRejected(err); rejected || err == nil {
		t.Fatalf("a proxy's 400 rejected documents or was taken as success: %v", err)
	}
	if r := s.Ready(); r == nil || !strings.Contains(r.Error(), "400") {
		t.Errorf("Ready() = %v, want the 400", r)
	}
	if s.Stats().BulkRequests < 2 {
		t.Errorf("the 400 was not retried: %+v", s.Stats())
	}
}

func TestValidate(t *testing.T) {
	if errs := DefaultConfig().Validate(); len(errs) != 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
	for _, c := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.Addresses = nil }, "addresses: "},
		{func(c *Config) { c.Addresses = []string{"https://u:p@h:9200"} }, "addresses[0]: must not contain credentials"},
		{func(c *Config) { c.Username = "u" }, "password: required"},
		{func(c *Config) { c.Username, c.Password, c.BearerToken = "u", secret.New("p"), secret.New("t") }, "bearer_token: set only one"},
		{func(c *Config) { c.TLS.CAFingerprint = "abc" }, "tls.ca_fingerprint: "},
		{func(c *Config) { c.Index.Prefix = "Entra" }, "index.prefix: must be lowercase"},
		{func(c *Config) { c.Bulk.MaxDocs = 0 }, "bulk.max_docs: "},
		{func(c *Config) { c.Retry.MaxBackoff = time.Millisecond }, "retry.max_backoff: "},
		{func(c *Config) { c.Retry.InitialBackoff = 0 }, "retry.initial_backoff: must be positive"},
		{func(c *Config) { c.ISM.RetentionDays = 0 }, "ism.retention_days: "},
		{func(c *Config) { c.RequestTimeout = 0 }, "request_timeout: "},
	} {
		cfg := DefaultConfig()
		c.set(&cfg)
		found := false
		for _, e := range cfg.Validate() {
			found = found || strings.HasPrefix(e.Error(), c.want)
		}
		if !found {
			t.Errorf("want an error starting %q, got %v", c.want, cfg.Validate())
		}
	}
}

// TestDeployFilesMatchSetup keeps deploy/opensearch equal to what Setup
// sends with the default configuration (go test -run DeployFiles -update
// rewrites them).
func TestDeployFilesMatchSetup(t *testing.T) {
	assets, err := Assets(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, a := range assets {
		want[a.FileName()] = true
		if *update {
			if err := os.WriteFile(filepath.Join(deployDir, a.FileName()), a.Body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(filepath.Join(deployDir, a.FileName()))
		if err != nil || !bytes.Equal(got, a.Body) {
			t.Errorf("%s differs from what Setup sends (run go test -run DeployFiles -update): %v", a.FileName(), err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(deployDir, "*.json"))
	for _, f := range files {
		if !want[filepath.Base(f)] {
			t.Errorf("%s is not something Setup installs", f)
		}
	}
}

// The mappings are the Elasticsearch output's but for the free-form maps,
// which OpenSearch maps as flat_object.
func TestMappingsDifferOnlyInTheFreeFormType(t *testing.T) {
	es := bulk.Mappings(map[string]any{"type": "flattened", "ignore_above": 1024})
	os := Mappings()
	ad := func(m map[string]any) any {
		return m["properties"].(map[string]any)["azure"].(map[string]any)["properties"].(map[string]any)["auditlogs"].(map[string]any)["properties"].(map[string]any)["additional_details"]
	}
	if got := ad(os); !reflect.DeepEqual(got, map[string]any{"type": "flat_object"}) {
		t.Errorf("additional_details mapped as %v", got)
	}
	ad(es).(map[string]any)["type"] = "flat_object"
	delete(ad(es).(map[string]any), "ignore_above")
	if !reflect.DeepEqual(es, os) {
		t.Error("the mappings differ elsewhere too")
	}
}
