package sspr_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/pipeline"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/testdata"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.ndjson from the current output")

// ssprTenant is the tenant of the sspr set; Graph pages carry no tenant, so
// they are decoded with it as the default, as a deployment polling Graph for
// one tenant would configure.
const ssprTenant = "50a74cff-026f-4c84-aa8f-f5f8d837115f"

// fixedNow keeps dead-letter timestamps deterministic.
func fixedNow() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }

func newDecoder(t testing.TB, opts sspr.Options) *pipeline.Decoder {
	t.Helper()
	cat, err := sspr.NewCatalog(nil)
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	return &pipeline.Decoder{Catalog: cat, Normalize: opts, Now: fixedNow}
}

// input is one test input: a file's bytes (for YAML files, the records
// extracted from it as NDJSON) and the options it is decoded with.
type input struct {
	name string // e.g. "shared/entra/x.log", "project/sspr/y.json"
	data []byte
	opts sspr.Options
}

func decode(t testing.TB, in input) pipeline.Result {
	t.Helper()
	d := newDecoder(t, in.opts)
	return d.Decode([]stream.Body{{Data: in.data, Pos: stream.Position{Kind: "file", File: in.name, Line: 1}}})
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

// optionsFor gives the Graph pages of the sspr set their tenant.
func optionsFor(base string) sspr.Options {
	if strings.HasPrefix(base, "graph-") {
		return sspr.Options{DefaultTenantID: ssprTenant}
	}
	return sspr.Options{}
}

// loadDir reads every input file of dir: *.json, *.log and (records
// extracted from) *.yml; expected-summary.json and documentation are not
// inputs.
func loadDir(t testing.TB, label, dir string) []input {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read dir: %v", err)
	}
	var out []input
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || n == "expected-summary.json" {
			continue
		}
		path := filepath.Join(dir, n)
		switch filepath.Ext(n) {
		case ".json", ".log":
			out = append(out, input{name: label + "/" + n, data: readFile(t, path), opts: optionsFor(n)})
		case ".yml", ".yaml":
			out = append(out, input{name: label + "/" + n, data: yamlRecords(t, path)})
		}
	}
	if len(out) == 0 {
		t.Fatalf("no inputs in %s", dir)
	}
	return out
}

// yamlRecords extracts the test records of a Panther rule file (Tests[].Log)
// as NDJSON: the records are YAML flow mappings, not JSON, so they cannot be
// fed to the decoder as they are.
func yamlRecords(t testing.TB, path string) []byte {
	t.Helper()
	var rule struct {
		Tests []struct {
			Log map[string]any `yaml:"Log"`
		} `yaml:"Tests"`
	}
	if err := yaml.Unmarshal(readFile(t, path), &rule); err != nil {
		t.Fatalf("yaml %s: %v", path, err)
	}
	var buf bytes.Buffer
	for _, tc := range rule.Tests {
		if tc.Log == nil {
			continue
		}
		b, err := json.Marshal(tc.Log)
		if err != nil {
			t.Fatalf("%s: record as JSON: %v", path, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if buf.Len() == 0 {
		t.Fatalf("%s: no Tests[].Log records", path)
	}
	return buf.Bytes()
}

// projectInputs are the files bundled in the repository's testdata/: the
// SSPR set, the published records that may be redistributed, the sample,
// and the project's own records in every shape the published corpus shows.
func projectInputs(t testing.TB) []input {
	t.Helper()
	root := testdata.Project(t)
	var out []input
	for _, sub := range []string{"sspr", "entra", "sample", "shapes", "trail"} {
		out = append(out, loadDir(t, "project/"+sub, filepath.Join(root, sub))...)
	}
	return out
}

// sharedInputs are the files of the shared corpus (skips when absent).
func sharedInputs(t testing.TB) []input {
	t.Helper()
	root := testdata.Shared(t)
	var out []input
	for _, sub := range []string{"sspr", "entra"} {
		out = append(out, loadDir(t, "shared/"+sub, filepath.Join(root, sub))...)
	}
	return out
}

// summary is the shape of expected-summary.json.
type summary struct {
	ByAction  map[string]int64 `json:"by_action"`
	ByOutcome map[string]int64 `json:"by_outcome"`
	IDs       []string         `json:"ids"`
	Records   int64            `json:"records"`
	SSPR      int64            `json:"sspr"`
}

func summarize(res pipeline.Result) summary {
	s := summary{ByAction: map[string]int64{}, ByOutcome: map[string]int64{}, Records: res.Counts.Records, SSPR: res.Counts.SSPR}
	for _, d := range res.Docs {
		s.ByAction[d.Event.Action]++
		s.ByOutcome[d.Event.Outcome]++
		s.IDs = append(s.IDs, d.Event.ID)
	}
	sort.Strings(s.IDs)
	return s
}

func ssprDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(testdata.Project(t), "sspr")
}

func loadSummary(t testing.TB) summary {
	t.Helper()
	var s summary
	if err := json.Unmarshal(readFile(t, filepath.Join(ssprDir(t), "expected-summary.json")), &s); err != nil {
		t.Fatalf("expected-summary.json: %v", err)
	}
	if s.SSPR != int64(len(s.IDs)) {
		t.Fatalf("expected-summary.json: sspr %d but %d ids", s.SSPR, len(s.IDs))
	}
	return s
}

// ssprShape decodes one shape of the sspr set; the Graph shape is both pages
// in one batch, in page order.
func ssprShape(t testing.TB, shape string) pipeline.Result {
	t.Helper()
	dir := ssprDir(t)
	var files []string
	switch shape {
	case "eventhubs":
		files = []string{"eventhub-body-mixed.json"}
	case "archive":
		files = []string{"storage-archive-PT1H.json"}
	case "graph":
		files = []string{"graph-directoryaudits-page1.json", "graph-directoryaudits-page2.json"}
	default:
		t.Fatalf("unknown shape %q", shape)
	}
	var bodies []stream.Body
	for _, f := range files {
		bodies = append(bodies, stream.Body{Data: readFile(t, filepath.Join(dir, f)), Pos: stream.Position{Kind: "file", File: f, Line: 1}})
	}
	res := newDecoder(t, optionsFor(files[0])).Decode(bodies)
	if len(res.DeadLetters) != 0 {
		t.Fatalf("%s: %d dead letters, first: %s", shape, len(res.DeadLetters), res.DeadLetters[0].Error)
	}
	return res
}

func TestSummaryEventHubsBody(t *testing.T) {
	want := loadSummary(t)
	got := summarize(ssprShape(t, "eventhubs"))
	assertSummary(t, got, want)
}

func TestSummaryStorageArchive(t *testing.T) {
	data := readFile(t, filepath.Join(ssprDir(t), "storage-archive-PT1H.json"))
	// The archive shape matters: one record per line with CRLF ends.
	if n := bytes.Count(data, []byte("\r\n")); n == 0 || n != bytes.Count(data, []byte("\n")) {
		t.Fatalf("archive: %d CRLF of %d line ends, want all lines CRLF", n, bytes.Count(data, []byte("\n")))
	}
	want := loadSummary(t)
	got := summarize(ssprShape(t, "archive"))
	assertSummary(t, got, want)
}

// TestSummaryGraph: the Graph pages hold the SSPR and security-info records
// only (the service-side query filters on them), so they have no non-SSPR
// records to drop: every record of the pages is an event, and the events are
// exactly those of the summary.
func TestSummaryGraph(t *testing.T) {
	want := loadSummary(t)
	want.Records = want.SSPR
	res := ssprShape(t, "graph")
	assertSummary(t, summarize(res), want)
	if res.Counts.Dropped != 0 {
		t.Errorf("graph: %d records dropped, want 0", res.Counts.Dropped)
	}
	for _, d := range res.Docs {
		if d.Cloud.Account.ID != ssprTenant || d.Azure.TenantID != ssprTenant {
			t.Errorf("graph %s: tenant %q/%q, want the default %q", d.Event.ID, d.Cloud.Account.ID, d.Azure.TenantID, ssprTenant)
		}
	}
}

func assertSummary(t *testing.T, got, want summary) {
	t.Helper()
	if got.Records != want.Records {
		t.Errorf("records = %d, want %d", got.Records, want.Records)
	}
	if got.SSPR != want.SSPR {
		t.Errorf("sspr = %d, want %d", got.SSPR, want.SSPR)
	}
	if !slices.Equal(got.IDs, want.IDs) {
		t.Errorf("ids:\n got %q\nwant %q", got.IDs, want.IDs)
	}
	if !maps.Equal(got.ByAction, want.ByAction) {
		t.Errorf("by_action = %v, want %v", got.ByAction, want.ByAction)
	}
	if !maps.Equal(got.ByOutcome, want.ByOutcome) {
		t.Errorf("by_outcome = %v, want %v", got.ByOutcome, want.ByOutcome)
	}
}

// flatten turns a document into its leaf paths and JSON values, arrays of
// scalars kept whole and arrays of objects indexed (path.0.field).
func flatten(t testing.TB, doc any) map[string]any {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	out := map[string]any{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, e)
			}
		case []any:
			if len(x) > 0 {
				if _, obj := x[0].(map[string]any); obj {
					for i, e := range x {
						walk(fmt.Sprintf("%s.%d", prefix, i), e)
					}
					return
				}
			}
			out[prefix] = x
		default:
			out[prefix] = x
		}
	}
	walk("", v)
	return out
}

// graphOnlyMissing are the fields a Graph directoryAudit does not carry and
// the diagnostic-settings envelope does: the resource id of the tenant's
// aadiam provider, and the envelope's operationVersion. Everything else,
// including source.ip (Graph carries the initiating user's ipAddress, which
// is preferred over callerIpAddress in both shapes) and the tenant (given by
// the DefaultTenantID option), must be identical.
var graphOnlyMissing = []string{"azure.resource_id", "azure.auditlogs.operation_version"}

// TestSameEventSameDocument: an event normalizes to the same document
// whichever shape it arrives in.
func TestSameEventSameDocument(t *testing.T) {
	hub := ssprShape(t, "eventhubs").Docs
	archive := ssprShape(t, "archive").Docs
	graph := ssprShape(t, "graph").Docs
	byID := func(docs []ecs.Event) map[string]ecs.Event {
		m := map[string]ecs.Event{}
		for _, d := range docs {
			if _, dup := m[d.Event.ID]; dup {
				t.Fatalf("duplicate event.id %s", d.Event.ID)
			}
			m[d.Event.ID] = d
		}
		return m
	}
	hubM, archM, graphM := byID(hub), byID(archive), byID(graph)
	if len(hubM) == 0 {
		t.Fatal("no documents from the Event Hubs body")
	}
	for id, h := range hubM {
		a, ok := archM[id]
		if !ok {
			t.Errorf("%s: missing from the archive", id)
		} else if diff := diffDocs(t, h, a); len(diff) > 0 {
			t.Errorf("%s: Event Hubs and archive documents differ:\n%s", id, strings.Join(diff, "\n"))
		}
		g, ok := graphM[id]
		if !ok {
			t.Errorf("%s: missing from the Graph pages", id)
			continue
		}
		hf, gf := flatten(t, h), flatten(t, g)
		for _, p := range graphOnlyMissing {
			if _, ok := hf[p]; !ok {
				t.Errorf("%s: Event Hubs document lacks %s", id, p)
			}
			if v, ok := gf[p]; ok {
				t.Errorf("%s: Graph document has %s = %v, but Graph does not carry it", id, p, v)
			}
			delete(hf, p)
		}
		if diff := diffFlat(hf, gf); len(diff) > 0 {
			t.Errorf("%s: Event Hubs and Graph documents differ beyond %v:\n%s", id, graphOnlyMissing, strings.Join(diff, "\n"))
		}
	}
}

func diffDocs(t testing.TB, a, b ecs.Event) []string {
	t.Helper()
	return diffFlat(flatten(t, a), flatten(t, b))
}

func diffFlat(a, b map[string]any) []string {
	var diff []string
	for k, av := range a {
		bv, ok := b[k]
		if !ok {
			diff = append(diff, fmt.Sprintf("  %s: %v vs (absent)", k, av))
		} else if fmt.Sprint(av) != fmt.Sprint(bv) {
			diff = append(diff, fmt.Sprintf("  %s: %v vs %v", k, av, bv))
		}
	}
	for k, bv := range b {
		if _, ok := a[k]; !ok {
			diff = append(diff, fmt.Sprintf("  %s: (absent) vs %v", k, bv))
		}
	}
	sort.Strings(diff)
	return diff
}

// goldenInputs are the project's own SSPR inputs; their documents are kept
// under testdata/golden and compared byte for byte.
var goldenInputs = []string{
	"eventhub-body-mixed.json",
	"storage-archive-PT1H.json",
	"graph-directoryaudits-page1.json",
	"graph-directoryaudits-page2.json",
}

// goldenFile is one input of TestGolden and the golden file of its documents.
type goldenFile struct {
	in     string // path of the input
	golden string // base name under testdata/golden
}

// goldenFiles are the SSPR set, every file of testdata/shapes that holds
// SSPR events (golden file shapes-<base>.ndjson) and every file of
// testdata/trail (trail-<base>.ndjson).
func goldenFiles(t testing.TB) []goldenFile {
	t.Helper()
	var out []goldenFile
	for _, name := range goldenInputs {
		out = append(out, goldenFile{filepath.Join(ssprDir(t), name), strings.TrimSuffix(name, filepath.Ext(name)) + ".ndjson"})
	}
	for _, name := range slices.Sorted(maps.Keys(shapeExpect)) {
		if shapeExpect[name].sspr > 0 {
			out = append(out, goldenFile{filepath.Join(shapesDir(t), name), "shapes-" + strings.TrimSuffix(name, filepath.Ext(name)) + ".ndjson"})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(trailExpect)) {
		out = append(out, goldenFile{filepath.Join(trailDir(t), name), "trail-" + strings.TrimSuffix(name, filepath.Ext(name)) + ".ndjson"})
	}
	return out
}

func TestGolden(t *testing.T) {
	goldenDir := filepath.Join(testdata.Project(t), "golden")
	for _, gf := range goldenFiles(t) {
		name := filepath.Base(gf.in)
		t.Run(gf.golden, func(t *testing.T) {
			res := decode(t, input{name: name, data: readFile(t, gf.in), opts: optionsFor(name)})
			if len(res.Docs) == 0 {
				t.Fatal("no documents")
			}
			var buf bytes.Buffer
			for i := range res.Docs {
				b, err := json.Marshal(&res.Docs[i])
				if err != nil {
					t.Fatal(err)
				}
				buf.Write(b)
				buf.WriteByte('\n')
			}
			path := filepath.Join(goldenDir, gf.golden)
			if *update {
				if err := os.MkdirAll(goldenDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/sspr -run TestGolden -update to create it)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				gl := strings.Split(buf.String(), "\n")
				wl := strings.Split(string(want), "\n")
				for i := 0; i < max(len(gl), len(wl)); i++ {
					var g, w string
					if i < len(gl) {
						g = gl[i]
					}
					if i < len(wl) {
						w = wl[i]
					}
					if g != w {
						t.Fatalf("%s differs from the output at line %d:\n got %s\nwant %s\n(after a deliberate change: go test ./internal/sspr -run TestGolden -update)", path, i+1, g, w)
					}
				}
			}
		})
	}
}

// fileExpect is what decoding one corpus file must give.
type fileExpect struct {
	records, sspr, dropped, unsupported, dead int64
}

// entraExpect: none of the real published records is an SSPR event except
// the 2018 preview-schema "Change password (self-service)", which is
// recognised and counted as Unsupported (dropped). Counts are of records:
// envelope elements, NDJSON lines, Graph page values, Panther Tests[].Log.
var entraExpect = map[string]fileExpect{
	"azure-docs__auditlog-schema-current-update-policy.json":              {records: 1, dropped: 1},
	"azure-docs__auditlog-schema-legacy-change-password-selfservice.json": {records: 1, dropped: 1, unsupported: 1},
	"azure-docs__auditlog-schema-legacy-update-sp.json":                   {records: 1, dropped: 1},
	"azure-docs__signinlog-schema-example.json":                           {records: 1, dropped: 1},
	"elastic-beats__auditlogs-ipv6.log":                                   {records: 1, dropped: 1},
	"elastic-beats__auditlogs-pretty-multiline.log":                       {records: 1, dropped: 1},
	"elastic-beats__auditlogs-records-envelope.json":                      {records: 1, dropped: 1},
	"elastic-integrations__auditlogs-duration-as-string.log":              {records: 1, dropped: 1},
	"elastic-integrations__auditlogs-failure-result-reason.log":           {records: 1, dropped: 1},
	"elastic-integrations__auditlogs-ipv6-edgecases.log":                  {records: 2, dropped: 2},
	"elastic-integrations__auditlogs-no-tenantid.log":                     {records: 1, dropped: 1},
	"elastic-integrations__auditlogs-raw.log":                             {records: 3, dropped: 3},
	"elastic-integrations__auditlogs-result-description.log":              {records: 2, dropped: 2},
	"elastic-integrations__auditlogs-sample.log":                          {records: 3, dropped: 3},
	"elastic-integrations__auditlogs-time-formats.log":                    {records: 11, dropped: 11},
	"elastic-integrations__signinlogs-raw-5-categories.log":               {records: 5, dropped: 5},
	"elastic-integrations__signinlogs-us-time-duration-string.log":        {records: 1, dropped: 1},
	"msgraph-docs__directoryaudit-get-beta-odata-type.json":               {records: 1, dropped: 1},
	"msgraph-docs__directoryaudit-get-v1.json":                            {records: 1, dropped: 1},
	"msgraph-docs__directoryaudit-list-beta-example1-bare-object.json":    {records: 1, dropped: 1},
	"msgraph-docs__directoryaudit-list-v1-example1.json":                  {records: 1, dropped: 1},
	"msgraph-docs__directoryaudit-list-v1-example2-ssgm.json":             {records: 1, dropped: 1},
	"panther-analysis__azure_failed_signins.yml":                          {records: 2, dropped: 2},
	"panther-analysis__azure_invite_external_users.yml":                   {records: 4, dropped: 4},
	"wazuh__graph-directoryaudits-page-with-nextlink.json":                {records: 2, dropped: 2},
}

func counts(res pipeline.Result) fileExpect {
	return fileExpect{res.Counts.Records, res.Counts.SSPR, res.Counts.Dropped, res.Counts.Unsupported, int64(len(res.DeadLetters))}
}

// checkCorpus decodes every input of a directory: none may crash, each
// gives the counts expect has for its base name, and every file expect
// names is there.
func checkCorpus(t *testing.T, ins []input, expect map[string]fileExpect, expectName string) {
	t.Helper()
	seen := map[string]bool{}
	for _, in := range ins {
		base := filepath.Base(in.name)
		seen[base] = true
		t.Run(base, func(t *testing.T) {
			want, ok := expect[base]
			if !ok {
				t.Fatalf("no expectation for %s: add one to %s", base, expectName)
			}
			if got := counts(decode(t, in)); got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
	for base := range expect {
		if !seen[base] {
			t.Errorf("expected file %s is not in the corpus", base)
		}
	}
}

// TestEntraCorpus runs every file of the real-record corpus through the
// decoder: none may crash, and each gives its expected counts.
func TestEntraCorpus(t *testing.T) {
	checkCorpus(t, loadDir(t, "shared/entra", filepath.Join(testdata.Shared(t), "entra")), entraExpect, "entraExpect")
}

// TestBundledEntraCorpus: the published records bundled in testdata/entra
// (copies of part of the shared corpus) decode as entraExpect says.
func TestBundledEntraCorpus(t *testing.T) {
	ins := loadDir(t, "project/entra", filepath.Join(testdata.Project(t), "entra"))
	for _, in := range ins {
		base := filepath.Base(in.name)
		want, ok := entraExpect[base]
		if !ok {
			t.Errorf("no expectation for bundled %s: add one to entraExpect", base)
			continue
		}
		if got := counts(decode(t, in)); got != want {
			t.Errorf("%s: got %+v, want %+v", base, got, want)
		}
	}
}

// Variants: the real records hold no SSPR activity, so to put their odd
// field shapes through normalization the activity name of every record is
// rewritten to an SSPR one. The time-formats file has records with only a
// time and a category; those get a minimal SSPR properties object.
var (
	activityRE  = regexp.MustCompile(`("(?:activityDisplayName|operationName)"\s*:\s*)"[^"]*"`)
	ssprName    = []byte(`${1}"Reset password (self-service)"`)
	timeOnlyRE  = regexp.MustCompile(`"category": "AuditLogs"}`)
	timeOnlyAdd = []byte(`"category": "AuditLogs", "properties": {"id": "t", "activityDisplayName": "Reset password (self-service)", "loggedByService": "Self-service Password Management", "result": "success"}}`)
)

// variant returns the SSPR variant of an input, and false when the input
// has no activity name to rewrite.
func variant(in input) (input, bool) {
	v := activityRE.ReplaceAll(in.data, ssprName)
	if strings.Contains(in.name, "time-formats") {
		v = timeOnlyRE.ReplaceAll(in.data, timeOnlyAdd)
	}
	if bytes.Equal(v, in.data) {
		return input{}, false
	}
	return input{name: "variant/" + in.name, data: v, opts: in.opts}, true
}

// entraInput returns the published record file with this base name: the
// copy bundled in testdata/entra when the repository has one, else the
// shared corpus's (the caller skips when the corpus is absent).
func entraInput(t testing.TB, base string) input {
	t.Helper()
	label, path := "project/entra/", filepath.Join(testdata.Project(t), "entra", base)
	if _, err := os.Stat(path); err != nil {
		label, path = "shared/entra/", filepath.Join(testdata.Shared(t), "entra", base)
	}
	if strings.HasSuffix(base, ".yml") {
		return input{name: label + base, data: yamlRecords(t, path)}
	}
	return input{name: label + base, data: readFile(t, path)}
}

// variantResult decodes the SSPR variant of a published record file, after
// applying the extra byte replacements (old, new pairs).
func variantResult(t testing.TB, base string, opts sspr.Options, repl ...string) pipeline.Result {
	t.Helper()
	in := entraInput(t, base)
	for i := 0; i+1 < len(repl); i += 2 {
		if !bytes.Contains(in.data, []byte(repl[i])) {
			t.Fatalf("%s: %q not found", base, repl[i])
		}
		in.data = bytes.ReplaceAll(in.data, []byte(repl[i]), []byte(repl[i+1]))
	}
	v, ok := variant(in)
	if !ok {
		t.Fatalf("%s: no activity name to rewrite", base)
	}
	v.opts = opts
	res := decode(t, v)
	if len(res.DeadLetters) != 0 {
		t.Fatalf("%s: dead letter: %s", base, res.DeadLetters[0].Error)
	}
	return res
}

// TestVariantNormalization checks normalization of the published records'
// odd shapes, using their SSPR variants. The subtests on files that only the
// shared corpus holds skip when it is absent; TestShapeNormalization checks
// the same shapes on the project's own records.
func TestVariantNormalization(t *testing.T) {
	one := func(t *testing.T, res pipeline.Result, n int) []ecs.Event {
		t.Helper()
		if len(res.Docs) != n {
			t.Fatalf("%d documents, want %d (counts %+v)", len(res.Docs), n, res.Counts)
		}
		return res.Docs
	}

	t.Run("time formats all parse to UTC", func(t *testing.T) {
		docs := one(t, variantResult(t, "elastic-integrations__auditlogs-time-formats.log", sspr.Options{}), 11)
		want := []string{
			"2007-01-09T09:41:00Z", // 01/09/2007 09:41:00 (US month first, no zone: UTC)
			"2007-01-09T09:41:00Z", // 1/9/2007 09:41:00
			"2007-01-09T09:41:00Z", // 01/09/2007 09:41:00 AM
			"2007-01-09T09:41:00Z", // 1/9/2007 9:41:00 AM
			"2007-01-09T09:41:00Z", // 1/9/2007 10:41:00 AM +01:00
			"2007-01-09T09:41:00Z", // 2007-01-09T09:41:00
			"2007-01-09T09:41:00.22Z",
			"2007-01-09T09:41:00.6816663Z",
			"2007-01-09T09:41:00.535404056Z",
			"2007-01-09T09:41:00.992099Z", // +00:00
			"2007-01-09T09:41:00Z",        // 11:41:00+02:00
		}
		for i, d := range docs {
			eq(t, fmt.Sprintf("record %d @timestamp", i+1), d.Timestamp, want[i])
		}
	})

	t.Run("tenant from resourceId", func(t *testing.T) {
		d := one(t, variantResult(t, "elastic-integrations__auditlogs-no-tenantid.log", sspr.Options{DefaultTenantID: "default-must-not-win"}), 1)[0]
		eq(t, "cloud.account.id", d.Cloud.Account.ID, "c7f1e3ce-ba66-40a7-91bd-9594b36223fc")
		eq(t, "azure.tenant_id", d.Azure.TenantID, "c7f1e3ce-ba66-40a7-91bd-9594b36223fc")
	})

	t.Run("tenant field wins over default", func(t *testing.T) {
		d := one(t, variantResult(t, "elastic-beats__auditlogs-ipv6.log", sspr.Options{DefaultTenantID: "default-must-not-win"}), 1)[0]
		eq(t, "cloud.account.id", d.Cloud.Account.ID, "e27228f2-1ba6-4af3-bf2c-abd6cecb5751")
	})

	t.Run("default tenant when none given", func(t *testing.T) {
		d := one(t, variantResult(t, "msgraph-docs__directoryaudit-get-v1.json", sspr.Options{DefaultTenantID: "t-default"}), 1)[0]
		eq(t, "cloud.account.id", d.Cloud.Account.ID, "t-default")
		eq(t, "azure.tenant_id", d.Azure.TenantID, "t-default")
		d = one(t, variantResult(t, "msgraph-docs__directoryaudit-get-v1.json", sspr.Options{}), 1)[0]
		eq(t, "cloud.account.id without default", d.Cloud.Account.ID, "")
	})

	t.Run("IPv6 canonical form", func(t *testing.T) {
		// Upper case and a leading zero, in both the caller and the user address.
		d := one(t, variantResult(t, "elastic-beats__auditlogs-ipv6.log", sspr.Options{}, "2603:c022:c000:301:", "2603:C022:C000:0301:"), 1)[0]
		eq(t, "source.ip", d.Source.IP, "2603:c022:c000:301:41db:be0e:16ba:b4d7")
		eq(t, "related.ip", d.Related.IP, []string{"2603:c022:c000:301:41db:be0e:16ba:b4d7"})
		docs := one(t, variantResult(t, "elastic-integrations__auditlogs-ipv6-edgecases.log", sspr.Options{}), 2)
		eq(t, "edge 1 source.ip", docs[0].Source.IP, "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6")
		// "::2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6" has nine groups: not an address.
		eq(t, "edge 2 source.ip", docs[1].Source.IP, "")
		eq(t, "edge 2 related.ip", len(docs[1].Related.IP), 0)
	})

	t.Run("0.0.0.0 skipped, roles as string", func(t *testing.T) {
		docs := one(t, variantResult(t, "elastic-integrations__auditlogs-raw.log", sspr.Options{}), 3)
		checkRolesString(t, docs, "UserName", "User Registration Service", "Device Registration Service")
	})

	t.Run("<null> caller, numeric result, empty initiatedBy", func(t *testing.T) {
		d := one(t, variantResult(t, "azure-docs__auditlog-schema-current-update-policy.json", sspr.Options{}), 1)[0]
		eq(t, "source.ip", d.Source.IP, "")
		eq(t, "related.ip", len(d.Related.IP), 0)
		eq(t, "event.outcome", d.Event.Outcome, "success")
		eq(t, "azure.auditlogs.result", d.Azure.AuditLogs.Result, "0")
		eq(t, "user", d.User, ecs.User{})
		eq(t, "initiated_by", d.Azure.AuditLogs.InitiatedBy, ecs.InitiatedBy{})
		eq(t, "event.reason (\"\")", d.Event.Reason, "")
	})

	t.Run("additionalDetails shapes", func(t *testing.T) {
		const base = "azure-docs__auditlog-schema-current-update-policy.json"
		for _, c := range []struct {
			repl string
			want map[string]string
		}{
			{`"None"`, nil},
			{`" none "`, nil},
			{`{}`, nil},
			{`"free text"`, map[string]string{"value": "free text"}},
			{`{"k": "v", "n": 3, "e": ""}`, map[string]string{"k": "v", "n": "3"}},
			{`[{"key": "k", "value": "v"}, {"key": "k", "value": "second"}, {"key": "", "value": "x"}, {"key": "z", "value": null}]`, map[string]string{"k": "v"}},
		} {
			d := one(t, variantResult(t, base, sspr.Options{}, `"additionalDetails": []`, `"additionalDetails": `+c.repl), 1)[0]
			if !maps.Equal(d.Azure.AuditLogs.AdditionalDetails, c.want) {
				t.Errorf("additionalDetails %s: got %v, want %v", c.repl, d.Azure.AuditLogs.AdditionalDetails, c.want)
			}
		}
	})

	t.Run("targetResource singular, Type capitalised", func(t *testing.T) {
		d := one(t, variantResult(t, "msgraph-docs__directoryaudit-get-v1.json", sspr.Options{}), 1)[0]
		eq(t, "user.target", d.User.Target, ecs.TargetUser{ID: "1f0e98f5-3161-4c6b-9b50-d488572f2bb7", Name: "example@contoso.com", Domain: "contoso.com"})
		tr := targetTypes(t, d, "Group", "User")
		eq(t, "target 1 group_type", tr[0].GroupType, "unifiedGroups")
		eq(t, "user.name", d.User.Name, "bob@wingtiptoysonline.com")
		eq(t, "related.user", d.Related.User, []string{"1f0e98f5-3161-4c6b-9b50-d488572f2bb7", "example@contoso.com", "728309ae-1a37-4937-9afe-e35d964db09b", "bob@wingtiptoysonline.com"})
		eq(t, "source.ip", d.Source.IP, "127.0.0.1")
	})

	t.Run("@odata.type targets", func(t *testing.T) {
		d := one(t, variantResult(t, "msgraph-docs__directoryaudit-get-beta-odata-type.json", sspr.Options{}), 1)[0]
		eq(t, "user.target.id", d.User.Target.ID, "1x0exxf5-3xx1-4xxb-9xx0-d4xx572xxbb7")
		eq(t, "user.target.name", d.User.Target.Name, "jdoe@contoso.com")
		targetTypes(t, d, "#microsoft.graph.TargetResourceGroup", "#microsoft.graph.targetResourceUser")
	})

	t.Run("createdDateTime fallback", func(t *testing.T) {
		docs := one(t, variantResult(t, "wazuh__graph-directoryaudits-page-with-nextlink.json", sspr.Options{}), 2)
		eq(t, "record 1 @timestamp (activityDateTime)", docs[0].Timestamp, "2022-06-21T08:50:10.7019038Z")
		eq(t, "record 2 @timestamp (createdDateTime)", docs[1].Timestamp, "2022-06-21T08:50:10.6708119Z")
		// initiatedBy.user is null: the app is the initiator.
		eq(t, "record 1 app", docs[0].Azure.AuditLogs.InitiatedBy.App.ServicePrincipalName, "xxxxxxxxxxxxxxxxxx")
		eq(t, "record 1 operation_type (\"\")", docs[0].Azure.AuditLogs.OperationType, "")
	})

	t.Run("Panther records: space-separated time, ipaddr detail", func(t *testing.T) {
		docs := one(t, variantResult(t, "panther-analysis__azure_invite_external_users.yml", sspr.Options{}), 4)
		eq(t, "@timestamp", docs[0].Timestamp, "2024-09-23T14:33:09.0496611Z")
		if !slices.Contains(docs[0].Related.IP, "1.2.3.4") || !slices.Contains(docs[0].Related.IP, "1.1.1.1") {
			t.Errorf("related.ip = %v, want the user and caller addresses", docs[0].Related.IP)
		}
		eq(t, "source.ip (the user's address first)", docs[0].Source.IP, "1.2.3.4")
	})

	t.Run("sign-in records stay dropped", func(t *testing.T) {
		for _, base := range []string{"azure-docs__signinlog-schema-example.json", "elastic-integrations__signinlogs-raw-5-categories.log", "elastic-integrations__signinlogs-us-time-duration-string.log"} {
			res := variantResult(t, base, sspr.Options{})
			if res.Counts.SSPR != 0 || res.Counts.Dropped != res.Counts.Records {
				t.Errorf("%s: %+v, want every record dropped", base, res.Counts)
			}
		}
	})

	t.Run("preview schema stays unsupported", func(t *testing.T) {
		res := variantResult(t, "azure-docs__auditlog-schema-legacy-update-sp.json", sspr.Options{})
		if res.Counts.Unsupported != 1 || res.Counts.SSPR != 0 {
			t.Errorf("%+v, want 1 unsupported", res.Counts)
		}
	})
}

// TestNonASCIIActivityName: an activity of the SSPR service that is not in
// the catalog gets an ASCII action whatever its name holds, and a name with
// nothing to make an action from is dead-lettered with that reason.
func TestNonASCIIActivityName(t *testing.T) {
	record := func(name string) []byte {
		return []byte(`{"id":"x1","category":"UserManagement","activityDisplayName":` + strconv.Quote(name) +
			`,"activityDateTime":"2026-11-02T08:00:12Z","loggedByService":"Self-service Password Management","result":"success"}`)
	}
	res := decode(t, input{name: "latin", data: record("Réinitialiser le mot de passe (libre-service)"), opts: sspr.Options{DefaultTenantID: "t"}})
	if len(res.Docs) != 1 {
		t.Fatalf("%d documents, dead letters %v", len(res.Docs), res.DeadLetters)
	}
	if got, want := res.Docs[0].Event.Action, "r-initialiser-le-mot-de-passe-libre-service"; got != want {
		t.Errorf("event.action = %q, want %q", got, want)
	}
	if got, want := res.Docs[0].Azure.AuditLogs.OperationName, "Réinitialiser le mot de passe (libre-service)"; got != want {
		t.Errorf("operation_name = %q, want %q", got, want)
	}

	res = decode(t, input{name: "kana", data: record("パスワードのリセット"), opts: sspr.Options{DefaultTenantID: "t"}})
	if len(res.Docs) != 0 || len(res.DeadLetters) != 1 {
		t.Fatalf("%d documents and %d dead letters, want 0 and 1", len(res.Docs), len(res.DeadLetters))
	}
	if !strings.Contains(res.DeadLetters[0].Error, "no ASCII letter or digit") {
		t.Errorf("dead letter reason %q", res.DeadLetters[0].Error)
	}
}

// shapesDir holds the project's own records in each shape the published
// corpus shows (see testdata/SOURCES.md), so that the repository alone
// exercises every one of them.
func shapesDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(testdata.Project(t), "shapes")
}

// shapeExpect is what decoding each file of testdata/shapes must give.
var shapeExpect = map[string]fileExpect{
	"diag-duration-string.log":        {records: 1, sspr: 1},
	"diag-envelope-pretty.json":       {records: 2, sspr: 1, dropped: 1},
	"diag-ipv6-edgecases.log":         {records: 5, sspr: 5},
	"diag-ipv6.log":                   {records: 1, sspr: 1},
	"diag-no-tenantid.log":            {records: 1, sspr: 1},
	"diag-pretty-multiline.log":       {records: 2, sspr: 1, dropped: 1},
	"diag-result-description.log":     {records: 4, sspr: 3, dropped: 1},
	"diag-roles-string.log":           {records: 3, sspr: 3},
	"diag-spaced-keys.log":            {records: 3, sspr: 1, dropped: 2},
	"diag-time-formats.log":           {records: 17, sspr: 15, dropped: 2},
	"graph-bare-object.json":          {records: 1, sspr: 1},
	"graph-page-nextlink.json":        {records: 2, sspr: 2},
	"graph-page-odata-type.json":      {records: 1, sspr: 1},
	"graph-page-target-singular.json": {records: 1, sspr: 1},
	"graph-page-tips-ssgm.json":       {records: 2, sspr: 1, dropped: 1},
	"graph-page-type-capital.json":    {records: 1, sspr: 1},
	"signin-categories.log":           {records: 6, dropped: 6},
}

// TestShapeCorpus: every file of testdata/shapes decodes to its expected
// counts, and every expected file is there.
func TestShapeCorpus(t *testing.T) {
	checkCorpus(t, loadDir(t, "project/shapes", shapesDir(t)), shapeExpect, "shapeExpect")
}

// shapeDocs decodes one file of testdata/shapes with opts; it must give n
// documents and no dead letter.
func shapeDocs(t *testing.T, base string, opts sspr.Options, n int) []ecs.Event {
	t.Helper()
	res := decode(t, input{name: "project/shapes/" + base, data: readFile(t, filepath.Join(shapesDir(t), base)), opts: opts})
	if len(res.DeadLetters) != 0 {
		t.Fatalf("%s: dead letter: %s", base, res.DeadLetters[0].Error)
	}
	if len(res.Docs) != n {
		t.Fatalf("%s: %d documents, want %d (counts %+v)", base, len(res.Docs), n, res.Counts)
	}
	return res.Docs
}

// TestShapeNormalization checks what each odd shape of a record becomes,
// on the project's own records (TestVariantNormalization does the same on
// the published ones).
func TestShapeNormalization(t *testing.T) {
	const (
		fabrikam  = "6d2f8c1e-4b7a-4e39-a5d0-91c3e7f2b846"
		northwind = "b83e0f5a-2c64-4d1b-9e7f-3a5c8d20e719"
		tailspin  = "0c9a4e7b-58f2-4163-b2d8-e6f1a7c39d05"
	)

	t.Run("time formats all parse to UTC", func(t *testing.T) {
		docs := shapeDocs(t, "diag-time-formats.log", sspr.Options{}, 15)
		want := []string{
			"2025-03-04T14:05:09Z",           // 03/04/2025 14:05:09 (US month first, no zone: UTC)
			"2025-03-04T14:05:09Z",           // 3/4/2025 14:05:09
			"2025-03-04T14:05:09Z",           // 03/04/2025 02:05:09 PM
			"2025-03-04T14:05:09Z",           // 3/4/2025 2:05:09 PM
			"2025-03-04T14:05:09Z",           // 3/4/2025 3:05:09 PM +01:00
			"2025-03-04T00:05:09Z",           // 3/4/2025 12:05:09 AM
			"2025-03-04T12:05:09Z",           // 3/4/2025 12:05:09 PM
			"2025-03-04T14:05:09Z",           // 2025-03-04T14:05:09 (no zone)
			"2025-03-04T14:05:09.5Z",         // one fraction digit
			"2025-03-04T14:05:09.1234567Z",   // seven
			"2025-03-04T14:05:09.123456789Z", // nine
			"2025-03-04T14:05:09.25Z",        // .250000+00:00: trailing zeros dropped
			"2025-03-04T14:05:09Z",           // 16:05:09+02:00
			"2025-03-04T14:05:09Z",           // 09:05:09-05:00
			"2025-03-04T14:05:09.441Z",       // space instead of T, no zone
		}
		for i, d := range docs {
			eq(t, fmt.Sprintf("record %d @timestamp", i+1), d.Timestamp, want[i])
			eq(t, fmt.Sprintf("record %d event.id", i+1), d.Event.ID, fmt.Sprintf("tf-%02d", i+1))
		}
	})

	t.Run("tenant from resourceId", func(t *testing.T) {
		d := shapeDocs(t, "diag-no-tenantid.log", sspr.Options{DefaultTenantID: "default-must-not-win"}, 1)[0]
		eq(t, "cloud.account.id", d.Cloud.Account.ID, tailspin)
		eq(t, "azure.tenant_id", d.Azure.TenantID, tailspin)
	})

	t.Run("tenant field wins over default", func(t *testing.T) {
		d := shapeDocs(t, "diag-ipv6.log", sspr.Options{DefaultTenantID: "default-must-not-win"}, 1)[0]
		eq(t, "cloud.account.id", d.Cloud.Account.ID, northwind)
	})

	t.Run("default tenant when none given", func(t *testing.T) {
		d := shapeDocs(t, "graph-page-target-singular.json", sspr.Options{DefaultTenantID: "t-default"}, 1)[0]
		eq(t, "cloud.account.id", d.Cloud.Account.ID, "t-default")
		eq(t, "azure.tenant_id", d.Azure.TenantID, "t-default")
		d = shapeDocs(t, "graph-page-target-singular.json", sspr.Options{}, 1)[0]
		eq(t, "cloud.account.id without default", d.Cloud.Account.ID, "")
	})

	t.Run("IPv6 canonical form, keys sorted, numeric Level", func(t *testing.T) {
		// Upper case and leading zeros, in both the caller and the user address.
		d := shapeDocs(t, "diag-ipv6.log", sspr.Options{}, 1)[0]
		eq(t, "source.ip", d.Source.IP, "2001:db8:0:42:0:8a2e:370:7334")
		eq(t, "related.ip", d.Related.IP, []string{"2001:db8:0:42:0:8a2e:370:7334"})
		eq(t, "event.action", d.Event.Action, "account-unlock")
		eq(t, "user_agent.original", d.UserAgent.Original, "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
		tr := d.Azure.AuditLogs.TargetResources
		if len(tr) != 2 {
			t.Fatalf("target_resources: %d, want 2", len(tr))
		}
		eq(t, "target 2 group_type", tr[1].GroupType, "unknownFutureValue")
	})

	t.Run("IPv6 edge cases", func(t *testing.T) {
		docs := shapeDocs(t, "diag-ipv6-edgecases.log", sspr.Options{}, 5)
		for i, want := range []string{
			"2001:db8:4f2a:10::1b", // plain
			"",                     // "::" and eight more groups: not an address
			"198.51.100.77",        // IPv4-mapped IPv6
			"2001:db8::5",          // [address]:port
			"198.51.100.9",         // address:port
		} {
			eq(t, fmt.Sprintf("record %d source.ip", i+1), docs[i].Source.IP, want)
			if want == "" {
				eq(t, fmt.Sprintf("record %d related.ip", i+1), len(docs[i].Related.IP), 0)
			} else {
				eq(t, fmt.Sprintf("record %d related.ip", i+1), docs[i].Related.IP, []string{want})
			}
		}
	})

	t.Run("0.0.0.0 skipped, roles as string", func(t *testing.T) {
		docs := shapeDocs(t, "diag-roles-string.log", sspr.Options{}, 3)
		checkRolesString(t, docs, "kiosk-operator", "Kiosk Operator", "Fabrikam Enrolment Portal")
		eq(t, "record 1 app service_principal_name", docs[0].Azure.AuditLogs.InitiatedBy.App.ServicePrincipalName, "fabrikam-enrolment")
		eq(t, "record 1 event.action", docs[0].Event.Action, "security-info-registered")
	})

	t.Run("pretty-printed envelope and bare records", func(t *testing.T) {
		d := shapeDocs(t, "diag-envelope-pretty.json", sspr.Options{}, 1)[0]
		// initiatedBy.user has ipAddress and displayName null.
		eq(t, "source.ip", d.Source.IP, "")
		eq(t, "user.full_name", d.User.FullName, "")
		eq(t, "user.name", d.User.Name, "ines.moreau@fabrikam.example")
		eq(t, "additional_details ([])", len(d.Azure.AuditLogs.AdditionalDetails), 0)
		tr := d.Azure.AuditLogs.TargetResources
		if len(tr) != 1 || len(tr[0].ModifiedProperties) != 2 {
			t.Fatalf("target_resources %+v, want one with two modified properties", tr)
		}
		eq(t, "modified property 1", tr[0].ModifiedProperties[0].NewValue, `["2025-03-11T07:42:18Z"]`)
		eq(t, "modified property 2 old_value (null)", tr[0].ModifiedProperties[1].OldValue, "")

		d = shapeDocs(t, "diag-pretty-multiline.log", sspr.Options{}, 1)[0]
		eq(t, "multi-line event.action", d.Event.Action, "password-reset-by-admin")
		eq(t, "multi-line app", d.Azure.AuditLogs.InitiatedBy.App.DisplayName, "Fabrikam Helpdesk Bot")
		eq(t, "multi-line user", d.User.Name, "")
		eq(t, "multi-line user.target.name", d.User.Target.Name, "tomasz.wilk@fabrikam.example")
	})

	t.Run("spaced keys, userAgent null, AppId detail", func(t *testing.T) {
		d := shapeDocs(t, "diag-spaced-keys.log", sspr.Options{}, 1)[0]
		eq(t, "event.action", d.Event.Action, "password-change")
		eq(t, "user_agent.original (from additionalDetails)", d.UserAgent.Original, "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15")
		eq(t, "additional_details.AppId", d.Azure.AuditLogs.AdditionalDetails["AppId"], "f7a9c1e3-5b2d-4d8f-a0c2-4e6a8c0e2b71")
		eq(t, "source.ip", d.Source.IP, "198.51.100.23")
	})

	t.Run("durationMs as a string", func(t *testing.T) {
		d := shapeDocs(t, "diag-duration-string.log", sspr.Options{}, 1)[0]
		eq(t, "event.outcome", d.Event.Outcome, "failure")
		eq(t, "event.reason", d.Event.Reason, "FuzzyPolicyViolationInvalidPassword")
	})

	t.Run("resultDescription at both levels", func(t *testing.T) {
		docs := shapeDocs(t, "diag-result-description.log", sspr.Options{}, 3)
		eq(t, "record 1 outcome", docs[0].Event.Outcome, "failure")
		eq(t, "record 1 reason", docs[0].Event.Reason, "Password reset is not enabled for this user")
		eq(t, "record 2 reason", docs[1].Event.Reason, "Successfully completed reset.")
		eq(t, "record 3 action", docs[2].Event.Action, "security-info-default-changed")
		eq(t, "record 3 reason (\"\")", docs[2].Event.Reason, "")
	})

	t.Run("Type capitalised in a Graph page", func(t *testing.T) {
		d := shapeDocs(t, "graph-page-type-capital.json", sspr.Options{}, 1)[0]
		eq(t, "user.target.id", d.User.Target.ID, "2f8c6a1e-9d3b-4e07-a5c2-6b1e8d4f0a93")
		eq(t, "additional_details", d.Azure.AuditLogs.AdditionalDetails["Method used"], "Email")
	})

	t.Run("targetResource singular, Type capitalised", func(t *testing.T) {
		d := shapeDocs(t, "graph-page-target-singular.json", sspr.Options{}, 1)[0]
		eq(t, "user.target", d.User.Target, ecs.TargetUser{ID: "8a1c3e5f-7b9d-4d2a-b4c6-0e8f2a4c6b15", Name: "jonas.berg@northwind.example", Domain: "northwind.example"})
		tr := targetTypes(t, d, "Group", "User")
		eq(t, "target 1 group_type", tr[0].GroupType, "unifiedGroups")
		eq(t, "related.user", d.Related.User, []string{"8a1c3e5f-7b9d-4d2a-b4c6-0e8f2a4c6b15", "jonas.berg@northwind.example"})
		eq(t, "source.ip", d.Source.IP, "198.51.100.140")
	})

	t.Run("@odata.type targets, tab indentation", func(t *testing.T) {
		d := shapeDocs(t, "graph-page-odata-type.json", sspr.Options{}, 1)[0]
		eq(t, "user.target.id", d.User.Target.ID, "3d5a7c9e-2b4f-4618-8a0c-e1f3b5d7a924")
		eq(t, "user.target.name", d.User.Target.Name, "priya.raman@fabrikam.example")
		targetTypes(t, d, "#microsoft.graph.targetResourceGroup", "#microsoft.graph.targetResourceUser")
		eq(t, "source.ip", d.Source.IP, "2001:db8:aa::e")
	})

	t.Run("bare directoryAudit object", func(t *testing.T) {
		d := shapeDocs(t, "graph-bare-object.json", sspr.Options{DefaultTenantID: tailspin}, 1)[0]
		eq(t, "event.action", d.Event.Action, "security-info-registered")
		eq(t, "source.ip (\"\")", d.Source.IP, "")
		eq(t, "cloud.account.id", d.Cloud.Account.ID, tailspin)
		eq(t, "additional_details.UserType", d.Azure.AuditLogs.AdditionalDetails["UserType"], "Member")
	})

	t.Run("createdDateTime fallback, page with nextLink", func(t *testing.T) {
		docs := shapeDocs(t, "graph-page-nextlink.json", sspr.Options{}, 2)
		eq(t, "record 1 @timestamp (activityDateTime)", docs[0].Timestamp, "2025-03-01T12:00:30.5000012Z")
		eq(t, "record 2 @timestamp (createdDateTime)", docs[1].Timestamp, "2025-03-01T12:01:02.25Z")
		// initiatedBy.user is null: the app is the initiator.
		eq(t, "record 1 app", docs[0].Azure.AuditLogs.InitiatedBy.App.ServicePrincipalName, "tailspin-onboarding")
		eq(t, "record 1 operation_type (\"\")", docs[0].Azure.AuditLogs.OperationType, "")
		eq(t, "record 1 event.reason (null)", docs[0].Event.Reason, "")
		eq(t, "record 1 user.target.id (null)", docs[0].User.Target.ID, "")
		eq(t, "record 1 user.target.name", docs[0].User.Target.Name, "mei.lin@tailspin.example")
	})

	t.Run("other self-service service dropped, unknown SSPR activity kept", func(t *testing.T) {
		d := shapeDocs(t, "graph-page-tips-ssgm.json", sspr.Options{}, 1)[0]
		eq(t, "event.action", d.Event.Action, "self-service-password-reset-method-chosen")
		eq(t, "event.type", d.Event.Type, []string{"user", "info"})
		eq(t, "event.provider", d.Event.Provider, "Self-service Password Management")
	})

	t.Run("sign-in records stay dropped", func(t *testing.T) {
		in := input{name: "project/shapes/signin-categories.log", data: readFile(t, filepath.Join(shapesDir(t), "signin-categories.log"))}
		v, ok := variant(in)
		if !ok {
			t.Fatal("no activity name to rewrite")
		}
		for _, x := range []input{in, v} {
			res := decode(t, x)
			if res.Counts.Records != 6 || res.Counts.SSPR != 0 || res.Counts.Dropped != 6 || len(res.DeadLetters) != 0 {
				t.Errorf("%s: %+v, %d dead letters; want 6 records, all dropped", x.name, res.Counts, len(res.DeadLetters))
			}
		}
	})
}

// checkRolesString checks the three records of the roles-as-string shape:
// the first initiated by an application, the other two by a user whose
// roles is a string, whose address is 0.0.0.0 and whose UPN has no domain,
// the third without a display name.
func checkRolesString(t *testing.T, docs []ecs.Event, upn, fullName, app string) {
	t.Helper()
	for i, d := range docs[1:] {
		eq(t, fmt.Sprintf("record %d source.ip", i+2), d.Source.IP, "")
		eq(t, fmt.Sprintf("record %d related.ip", i+2), len(d.Related.IP), 0)
		eq(t, fmt.Sprintf("record %d user.name", i+2), d.User.Name, upn)
		eq(t, fmt.Sprintf("record %d user.domain", i+2), d.User.Domain, "")
	}
	eq(t, "record 2 user.full_name", docs[1].User.FullName, fullName)
	eq(t, "record 3 user.full_name (null)", docs[2].User.FullName, "")
	eq(t, "record 1 app", docs[0].Azure.AuditLogs.InitiatedBy.App.DisplayName, app)
	eq(t, "record 1 user.id", docs[0].User.ID, "")
}

// eq compares by printed value, so that slices, structs and numbers of any
// type compare as a reader of the message would.
func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// targetTypes checks the types of a document's target resources, in order,
// and returns the targets.
func targetTypes(t *testing.T, d ecs.Event, want ...string) []ecs.TargetResource {
	t.Helper()
	tr := d.Azure.AuditLogs.TargetResources
	if len(tr) != len(want) {
		t.Fatalf("target_resources: %d, want %d", len(tr), len(want))
	}
	for i, w := range want {
		eq(t, fmt.Sprintf("target %d type", i+1), tr[i].Type, w)
	}
	return tr
}
