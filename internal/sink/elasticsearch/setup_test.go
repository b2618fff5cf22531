package elasticsearch

import (
	"bytes"
	"encoding/csv"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/esdouble"
)

var update = flag.Bool("update", false, "rewrite deploy/elasticsearch from Assets(DefaultConfig())")

const deployDir = "../../../deploy/elasticsearch"

// Double: the ILM API (the test nodes have no ILM plugin); the templates alone are set up on the nodes too.
func TestSetupIsIdempotent(t *testing.T) {
	d := esdouble.New()
	defer d.Close()
	cfg := testConfig(d)
	logs := &syncbuf.Buffer{}

	if err := Check(tctx(t), cfg); err == nil || !strings.Contains(err.Error(), SetupCommand) || !strings.Contains(err.Error(), `index template "entra-sspr" is missing`) {
		t.Errorf("Check before setup: %v", err)
	}
	changed, err := Setup(tctx(t), cfg, newLogger(logs))
	if err != nil || !changed {
		t.Fatalf("first setup: changed=%v err=%v", changed, err)
	}
	puts := d.Stats().AdminPuts
	if puts != 4 {
		t.Errorf("first setup made %d PUTs, want 4", puts)
	}
	changed, err = Setup(tctx(t), cfg, newLogger(logs))
	if err != nil || changed {
		t.Fatalf("second setup: changed=%v err=%v", changed, err)
	}
	if d.Stats().AdminPuts != puts {
		t.Errorf("second setup wrote %d times", d.Stats().AdminPuts-puts)
	}
	if _, v := d.Policy("entra-sspr"); v != 1 {
		t.Errorf("policy version %d after two setups, want 1", v)
	}
	if err := Check(tctx(t), cfg); err != nil {
		t.Errorf("Check after setup: %v", err)
	}

	// A new retention replaces the policy, and only the policy.
	cfg.ILM.RetentionDays = 30
	if err := Check(tctx(t), cfg); err == nil || !strings.Contains(err.Error(), "ILM policy") {
		t.Errorf("Check with another retention: %v", err)
	}
	changed, err = Setup(tctx(t), cfg, nil)
	if err != nil || !changed || d.Stats().AdminPuts != puts+1 {
		t.Errorf("setup with a new retention: changed=%v err=%v puts=%d", changed, err, d.Stats().AdminPuts-puts)
	}
	pol, _ := d.Policy("entra-sspr")
	if got := pol["phases"].(map[string]any)["delete"].(map[string]any)["min_age"]; got != "30d" {
		t.Errorf("delete min_age %v", got)
	}

	d.Delete("component_template", "entra-sspr@mappings")
	if err := Check(tctx(t), cfg); err == nil || !strings.Contains(err.Error(), `component template "entra-sspr@mappings" is missing`) {
		t.Errorf("Check without the mappings: %v", err)
	}
}

// Double: 403 on demand (no security plugin on the test nodes).
func TestSetupAndCheckNameTheProblem(t *testing.T) {
	d := esdouble.New()
	defer d.Close()
	cfg := testConfig(d)
	d.Forbid(true)
	if _, err := Setup(tctx(t), cfg, nil); err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "manage_ilm") {
		t.Errorf("setup when forbidden: %v", err)
	}
	if err := Check(tctx(t), cfg); err == nil || !strings.Contains(err.Error(), "skip_setup_check") {
		t.Errorf("check when forbidden: %v", err)
	}
	cfg.SkipSetupCheck = true
	if err := Check(tctx(t), cfg); err != nil {
		t.Errorf("skipped check: %v", err)
	}
	d.Forbid(false)
	d.Close()
	cfg.SkipSetupCheck = false
	if err := Check(tctx(t), cfg); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("check with no node: %v", err)
	}
}

func TestTemplatesUseParseOriginationDate(t *testing.T) {
	assets, err := Assets(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	for _, a := range assets {
		all.Write(a.Body)
	}
	for _, want := range []string{`"parse_origination_date": true`, `"min_age": "400d"`, `"entra-sspr-*"`, `"type": "flattened"`, `"dynamic": false`} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("assets lack %s", want)
		}
	}
	// parse_origination_date needs names ending in -yyyy.MM.dd.
	for _, g := range []string{Day, Month, Year} {
		name := IndexName("entra-sspr", g, nov)
		suffix := name[len(name)-11:]
		if suffix[0] != '-' || suffix[5] != '.' || suffix[8] != '.' {
			t.Errorf("%s: %s does not end with -yyyy.MM.dd", g, name)
		}
		if !bulk.GlobMatch("entra-sspr-*", name) {
			t.Errorf("%s is not covered by the template pattern", name)
		}
	}
}

// TestDeployFilesMatchSetup keeps deploy/elasticsearch equal to what Setup
// sends with the default configuration (go test -run DeployFiles -update
// rewrites them).
func TestDeployFilesMatchSetup(t *testing.T) {
	assets, err := Assets(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.MkdirAll(deployDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, a := range assets {
			if err := os.WriteFile(filepath.Join(deployDir, a.FileName()), a.Body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := map[string]bool{}
	for _, a := range assets {
		want[a.FileName()] = true
		got, err := os.ReadFile(filepath.Join(deployDir, a.FileName()))
		if err != nil {
			t.Errorf("%v (run go test -run DeployFiles -update)", err)
			continue
		}
		if !bytes.Equal(got, a.Body) {
			t.Errorf("%s differs from what Setup sends (run go test -run DeployFiles -update)", a.FileName())
		}
	}
	files, _ := filepath.Glob(filepath.Join(deployDir, "*.json"))
	for _, f := range files {
		if !want[filepath.Base(f)] {
			t.Errorf("%s is not something Setup installs", f)
		}
	}
}

// leafFields lists the dotted JSON names of every value ecs.Event can emit.
func leafFields(typ reflect.Type, prefix string, out map[string]reflect.Kind) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := strings.Split(f.Tag.Get("json"), ",")[0]
		if tag == "-" || !f.IsExported() {
			continue
		}
		name := prefix + tag
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			leafFields(ft, name+".", out)
			continue
		}
		out[name] = ft.Kind()
	}
}

func mappedType(m map[string]any, path string) string {
	cur := m
	segs := strings.Split(path, ".")
	for i, s := range segs {
		props, _ := cur["properties"].(map[string]any)
		f, ok := props[s].(map[string]any)
		if !ok {
			return ""
		}
		if i == len(segs)-1 {
			typ, _ := f["type"].(string)
			return typ
		}
		cur = f
	}
	return ""
}

func TestMappingsCoverEveryEmittedField(t *testing.T) {
	fields := map[string]reflect.Kind{}
	leafFields(reflect.TypeOf(ecs.Event{}), "", fields)
	m := Mappings()
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		typ := mappedType(m, n)
		if typ == "" {
			t.Errorf("%s has no explicit mapping", n)
		}
		if fields[n] == reflect.Map && typ != "flattened" {
			t.Errorf("%s is a free-form map mapped as %q, want flattened", n, typ)
		}
	}
	if len(names) < 40 {
		t.Errorf("found only %d fields; the walk is broken", len(names))
	}

	// ECS fields get their ECS type.
	f, err := os.Open("testdata/ecs-fields.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows[1:] {
		field, typ := r[3], r[4]
		if _, emitted := fields[field]; !emitted {
			t.Errorf("ECS field %s listed but not emitted by ecs.Event", field)
			continue
		}
		if got := mappedType(m, field); got != typ {
			t.Errorf("%s mapped as %s, ECS says %s", field, got, typ)
		}
	}
	// The fields people filter and chart on.
	for field, typ := range map[string]string{
		"user.name": "keyword", "user.target.name": "keyword", "user.target.domain": "keyword",
		"cloud.account.id": "keyword", "event.action": "keyword", "event.outcome": "keyword",
		"source.ip": "ip", "related.ip": "ip", "@timestamp": "date",
	} {
		if got := mappedType(m, field); got != typ {
			t.Errorf("%s mapped as %s, want %s", field, got, typ)
		}
	}
	if m["dynamic"] != false {
		t.Errorf("dynamic = %v, want false", m["dynamic"])
	}
}

// Double: 401 and 403 on demand, and a node that is down.
// skip_setup_check skips the template and ILM checks only: Check (what
// `sspr-exporter check` and the start-up check run) still proves that the
// node is reachable and takes the credentials.
func TestSkipSetupCheckStillChecksTheNode(t *testing.T) {
	d := esdouble.New()
	defer d.Close()
	cfg := testConfig(d)
	cfg.SkipSetupCheck = true
	cfg.APIKey = secret.New("c2tpcC1jaGVjazpzZWNyZXQta2V5LTEyMzQ=")

	if err := Check(tctx(t), cfg); err != nil {
		t.Errorf("reachable node without templates: %v", err)
	}
	// A writer role has no monitor privilege: the node's 403 on GET /
	// still says the user is authenticated.
	d.ForbidInfo(true)
	d.Forbid(true)
	if err := Check(tctx(t), cfg); err != nil {
		t.Errorf("writer without monitor and template privileges: %v", err)
	}
	d.ForbidInfo(false)
	d.Forbid(false)

	d.Unauthorized(true)
	err := Check(tctx(t), cfg)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "api_key") {
		t.Errorf("credentials refused: %v", err)
	}
	d.Unauthorized(false)

	d.SetDown(true)
	if err := Check(tctx(t), cfg); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("node down: %v", err)
	}
	d.SetDown(false)

	// Something that is not Elasticsearch answering at the address.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	defer other.Close()
	notES := cfg
	notES.Addresses = []string{other.URL}
	if err := Check(tctx(t), notES); err == nil || !strings.Contains(err.Error(), "not Elasticsearch") {
		t.Errorf("not Elasticsearch: %v", err)
	}

	d.Close()
	if err := Check(tctx(t), cfg); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("no node: %v", err)
	}
}
