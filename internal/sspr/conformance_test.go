package sspr_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich/geoip"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich/geoip/geoiptest"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich/graph"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/testdata"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/graphapi"
	"github.com/sspr-exporter/sspr-exporter/schema"
)

// producedDoc is one emitted document and the input it came from.
type producedDoc struct {
	from string
	doc  ecs.Event
}

// allDocs decodes every input (with and without event.original): the
// project's bundled files, the SSPR variants of the published records among
// them, and when present the shared corpus and the variants of its records.
func allDocs(t *testing.T) []producedDoc {
	t.Helper()
	ins := projectInputs(t)
	var published []input
	for _, in := range ins {
		if strings.HasPrefix(in.name, "project/entra/") {
			published = append(published, in)
		}
	}
	if _, ok := testdata.SharedDir(); ok {
		published = append(published, sharedInputs(t)...)
		ins = append(ins, sharedInputs(t)...)
	} else {
		t.Logf("shared test data not found: checking the repository's files only")
	}
	for _, in := range published {
		if v, ok := variant(in); ok {
			ins = append(ins, v)
		}
	}
	var out []producedDoc
	for _, in := range ins {
		for _, preserve := range []bool{false, true} {
			in := in
			in.opts.PreserveOriginal = preserve
			res := decode(t, in)
			for _, d := range res.Docs {
				out = append(out, producedDoc{from: in.name, doc: d})
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no documents from the test data")
	}
	return append(out, enriched(t, out)...)
}

// enriched returns a copy of every document as the enrichers make it:
// GeoIP fields from test databases covering the documentation ranges the
// records use, groups and roles from a Microsoft Graph double that knows
// every target user.
func enriched(t *testing.T, docs []producedDoc) []producedDoc {
	t.Helper()
	city, asn := geoiptest.Sample(t, t.TempDir())
	srv := graphapi.New(t)
	for _, p := range docs {
		if id := p.doc.User.Target.ID; id != "" {
			srv.AddUser(graphapi.User{ID: id, Groups: []graphapi.Group{{ID: "g-" + id, DisplayName: "Staff"}, {ID: "g-all", DisplayName: "All users"}, {ID: "g-hidden"}}, Roles: []graphapi.Role{{ID: "r1", DisplayName: "Helpdesk Administrator"}}})
		}
	}
	gcfg := graph.DefaultConfig()
	gcfg.TenantID, gcfg.ClientID, gcfg.ClientSecret = graphapi.TenantID, graphapi.ClientID, secret.New(graphapi.ClientSecret)
	gcfg.AuthorityHost, gcfg.Endpoint, gcfg.DisableInstanceDiscovery = srv.URL(), srv.URL(), true
	gcfg.CAFile = srv.CAFile(t, t.TempDir())
	gcfg.MaxWait = time.Minute // a bound: each batch returns once Graph answered
	set, err := enrich.New(geoip.Config{CityDatabase: city, ASNDatabase: asn}, &gcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = set.Close(context.Background()) }()
	batch := make([]ecs.Event, len(docs))
	for i, p := range docs {
		batch[i] = p.doc
	}
	set.Enrich(batch)
	out := make([]producedDoc, len(docs))
	for i, p := range docs {
		out[i] = producedDoc{from: "enriched/" + p.from, doc: batch[i]}
	}
	return out
}

// ecsField is one row of fields.csv.
type ecsField struct {
	typ   string
	array bool
}

func ecsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(filepath.Dir(testdata.Shared(t)), "ecs")
	if _, err := os.Stat(filepath.Join(dir, "fields.csv")); err != nil {
		testdata.Missing(t, "ECS definitions not found in %s", dir)
	}
	return dir
}

// loadECSFields reads fields.csv: field name to type.
func loadECSFields(t *testing.T) map[string]ecsField {
	t.Helper()
	f, err := os.Open(filepath.Join(ecsDir(t), "fields.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("fields.csv: %v", err)
	}
	if len(rows) < 2 || rows[0][3] != "Field" || rows[0][4] != "Type" || rows[0][6] != "Normalization" {
		t.Fatalf("fields.csv: unexpected header %v", rows[0])
	}
	m := map[string]ecsField{}
	for _, r := range rows[1:] {
		m[r[3]] = ecsField{typ: r[4], array: strings.Contains(r[6], "array")}
	}
	return m
}

// ecsAllowed is what ecs_flat.yml allows for the categorization fields.
type ecsAllowed struct {
	values        map[string][]string // field -> allowed values
	expectedTypes map[string][]string // event.category value -> expected event.type values
}

func loadECSAllowed(t *testing.T) ecsAllowed {
	t.Helper()
	var flat map[string]struct {
		AllowedValues []struct {
			Name               string   `yaml:"name"`
			ExpectedEventTypes []string `yaml:"expected_event_types"`
		} `yaml:"allowed_values"`
	}
	if err := yaml.Unmarshal(readFile(t, filepath.Join(ecsDir(t), "ecs_flat.yml")), &flat); err != nil {
		t.Fatalf("ecs_flat.yml: %v", err)
	}
	a := ecsAllowed{values: map[string][]string{}, expectedTypes: map[string][]string{}}
	for _, f := range []string{"event.kind", "event.category", "event.type", "event.outcome"} {
		for _, v := range flat[f].AllowedValues {
			a.values[f] = append(a.values[f], v.Name)
			if f == "event.category" {
				a.expectedTypes[v.Name] = v.ExpectedEventTypes
			}
		}
		if len(a.values[f]) == 0 {
			t.Fatalf("ecs_flat.yml: no allowed values for %s", f)
		}
	}
	return a
}

// customPrefixes are the namespaces for fields ECS does not define.
var customPrefixes = []string{"azure.", "entra."}

// arraysOfSingleFields are ECS fields the schema describes as one value
// that documents carry as arrays of such values: the group field set
// describes one group, and a user is a member of many (Elastic's own Entra
// ID integration lists them the same way). Elasticsearch indexes an array
// of a type like one value.
var arraysOfSingleFields = []string{"user.target.group.id", "user.target.group.name"}

func isCustom(path string) bool {
	for _, p := range customPrefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// compatible reports whether a JSON value can be indexed as the ECS type.
func compatible(typ string, v any) error {
	switch typ {
	case "keyword", "constant_keyword", "wildcard", "text", "match_only_text":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%T for %s", v, typ)
		}
	case "ip":
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%T for ip", v)
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("not an address: %q", s)
		}
		if a.String() != s {
			return fmt.Errorf("address %q not in canonical form %q", s, a.String())
		}
	case "date":
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%T for date", v)
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Errorf("not an RFC 3339 date: %q", s)
		}
	case "long", "integer", "short", "byte", "unsigned_long", "float", "double", "scaled_float", "half_float":
		if _, ok := v.(json.Number); !ok {
			return fmt.Errorf("%T for %s", v, typ)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%T for boolean", v)
		}
	case "geo_point":
		m, ok := v.(map[string]any)
		if !ok || len(m) != 2 {
			return fmt.Errorf("%T %v for geo_point, want {lat, lon}", v, v)
		}
		for k, lim := range map[string]float64{"lat": 90, "lon": 180} {
			n, ok := m[k].(json.Number)
			if !ok {
				return fmt.Errorf("geo_point %s is %T", k, m[k])
			}
			f, err := n.Float64()
			if err != nil || f < -lim || f > lim {
				return fmt.Errorf("geo_point %s %v out of range", k, n)
			}
		}
	case "object", "flattened", "nested":
		if _, ok := v.(map[string]any); !ok {
			return fmt.Errorf("%T for %s", v, typ)
		}
	default:
		return fmt.Errorf("ECS type %s not handled by this test", typ)
	}
	return nil
}

// geoPoints folds the lat and lon leaves of geo_point fields back into one
// {lat, lon} value, which is what ECS defines.
func geoPoints(t *testing.T, fields map[string]ecsField, flat map[string]any) map[string]any {
	t.Helper()
	out := map[string]any{}
	for path, v := range flat {
		parent, leaf, ok := strings.Cut(path, ".location.")
		if ok && fields[parent+".location"].typ == "geo_point" {
			m, _ := out[parent+".location"].(map[string]any)
			if m == nil {
				m = map[string]any{}
				out[parent+".location"] = m
			}
			m[leaf] = v
			continue
		}
		out[path] = v
	}
	return out
}

// emptyValues lists the paths of null, "", [] and {} in a JSON value.
func emptyValues(prefix string, v any) []string {
	var out []string
	switch x := v.(type) {
	case nil:
		out = append(out, prefix+" = null")
	case string:
		if x == "" {
			out = append(out, prefix+` = ""`)
		}
	case []any:
		if len(x) == 0 {
			out = append(out, prefix+" = []")
		}
		for i, e := range x {
			out = append(out, emptyValues(fmt.Sprintf("%s[%d]", prefix, i), e)...)
		}
	case map[string]any:
		if len(x) == 0 {
			out = append(out, prefix+" = {}")
		}
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			if k == "" {
				out = append(out, prefix+` has key ""`)
			}
			out = append(out, emptyValues(p, e)...)
		}
	}
	return out
}

// docJSON encodes a document and decodes it generically.
func docJSON(t testing.TB, d ecs.Event) ([]byte, any) {
	t.Helper()
	b, err := json.Marshal(&d)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return b, v
}

func eventSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	// The strict variant: a field the schema does not define is a defect
	// here, though consumers' tolerant schema would accept it.
	s, err := schema.Strict()
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return s
}

// TestDocumentsMatchSchema validates every document produced from all test
// data against schema/ecs-event.strict.schema.json.
func TestDocumentsMatchSchema(t *testing.T) {
	sch := eventSchema(t)
	for _, p := range allDocs(t) {
		b, _ := docJSON(t, p.doc)
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(v); err != nil {
			t.Errorf("%s %s: %v\n%s", p.from, p.doc.Event.ID, err, b)
		}
	}
}

// TestECSConformance: every emitted field is an ECS field of a compatible
// type or lives under a custom namespace; the categorization values are
// allowed by ECS; no document carries an empty value.
func TestECSConformance(t *testing.T) {
	fields := loadECSFields(t)
	allowed := loadECSAllowed(t)
	seen := map[string]bool{}
	for _, p := range allDocs(t) {
		_, v := docJSON(t, p.doc)
		where := fmt.Sprintf("%s %s", p.from, p.doc.Event.ID)
		if empty := emptyValues("", v); len(empty) > 0 {
			t.Errorf("%s: empty values %v", where, empty)
		}
		for path, val := range geoPoints(t, fields, flatten(t, p.doc)) {
			seen[path] = true
			if isCustom(path) {
				continue
			}
			f, ok := fields[path]
			if !ok {
				t.Errorf("%s: field %s is not defined in ECS and not under %v", where, path, customPrefixes)
				continue
			}
			vals := []any{val}
			if arr, isArr := val.([]any); isArr {
				if !f.array && !slices.Contains(arraysOfSingleFields, path) {
					t.Errorf("%s: %s is an array but ECS does not mark it as one", where, path)
				}
				vals = arr
			}
			for _, x := range vals {
				if err := compatible(f.typ, x); err != nil {
					t.Errorf("%s: %s: %v", where, path, err)
				}
			}
		}
		ev := p.doc.Event
		checkAllowed(t, where, allowed, "event.kind", ev.Kind)
		checkAllowed(t, where, allowed, "event.outcome", ev.Outcome)
		for _, c := range ev.Category {
			checkAllowed(t, where, allowed, "event.category", c)
			for _, ty := range ev.Type {
				if !slices.Contains(allowed.expectedTypes[c], ty) {
					t.Errorf("%s: event.type %q is not expected with event.category %q (%v)", where, ty, c, allowed.expectedTypes[c])
				}
			}
		}
		for _, ty := range ev.Type {
			checkAllowed(t, where, allowed, "event.type", ty)
		}
		if ev.Dataset != ecs.Dataset || p.doc.ECS.Version != ecs.Version {
			t.Errorf("%s: dataset %q, ecs.version %q", where, ev.Dataset, p.doc.ECS.Version)
		}
	}
	// The corpus must exercise the fields, or the checks above prove little.
	for _, want := range []string{
		"@timestamp", "event.reason", "event.original", "user.target.name", "related.ip", "source.ip", "user_agent.original", "cloud.account.id",
		"azure.auditlogs.additional_details.User-Agent", "azure.auditlogs.initiated_by.app.display_name", "azure.auditlogs.target_resources.0.modified_properties.0.new_value",
		"source.geo.city_name", "source.geo.country_iso_code", "source.geo.country_name", "source.geo.region_iso_code", "source.geo.region_name", "source.geo.location",
		"source.as.number", "source.as.organization.name", "user.target.group.id", "user.target.group.name", "user.target.roles",
		"entra.sspr.initiator", "entra.sspr.step", "entra.sspr.method", "entra.sspr.blocked", "entra.sspr.flow.id", "entra.sspr.writeback",
	} {
		if !seen[want] {
			t.Errorf("no document from the test data carries %s", want)
		}
	}
}

func checkAllowed(t *testing.T, where string, a ecsAllowed, field, value string) {
	t.Helper()
	if !slices.Contains(a.values[field], value) {
		t.Errorf("%s: %s %q is not an ECS allowed value (%v)", where, field, value, a.values[field])
	}
}

// TestEventFieldsAreECS walks ecs.Event itself, so that a field added to the
// struct is checked even before any test data fills it.
func TestEventFieldsAreECS(t *testing.T) {
	fields := loadECSFields(t)
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			if isCustom(path) {
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Struct {
				walk(path, ft)
				continue
			}
			e, ok := fields[path]
			if !ok {
				t.Errorf("ecs.Event field %s is not defined in ECS and not under %v", path, customPrefixes)
				continue
			}
			if ft.Kind() == reflect.Slice && !e.array && !slices.Contains(arraysOfSingleFields, path) {
				t.Errorf("ecs.Event field %s is a list but ECS does not mark it as an array", path)
			}
		}
	}
	walk("", reflect.TypeOf(ecs.Event{}))
}

// TestEmptyValuesCheck makes sure the empty-value check can fail.
func TestEmptyValuesCheck(t *testing.T) {
	var v any
	if err := json.Unmarshal([]byte(`{"a":"","b":[],"c":{},"d":null,"e":{"f":[""]},"g":"x"}`), &v); err != nil {
		t.Fatal(err)
	}
	got := emptyValues("", v)
	slices.Sort(got)
	want := []string{`a = ""`, "b = []", "c = {}", "d = null", `e.f[0] = ""`}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
