package schema_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/kafka"
	"github.com/sspr-exporter/sspr-exporter/schema"
)

var update = flag.Bool("update", false, "rewrite ecs-event.strict.schema.json from ecs-event.schema.json")

// variant is one of the two published schemas.
type variant struct {
	name     string
	data     []byte
	id       string
	strict   bool
	compiled func() (*jsonschema.Schema, error)
}

var (
	tolerant = variant{"tolerant", schema.ECSEvent, schema.ID, false, schema.Published}
	strict   = variant{"strict", schema.ECSEventStrict, schema.StrictID, true, schema.Strict}
	variants = []variant{tolerant, strict}
)

func compileVariant(t *testing.T, v variant) *jsonschema.Schema {
	t.Helper()
	s, err := v.compiled()
	if err != nil {
		t.Fatalf("compile %s: %v", v.name, err)
	}
	return s
}

func parse(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAnnotations(t *testing.T) {
	if schema.Version != kafka.SchemaVersion {
		t.Errorf("schema version %s, Kafka header version %s", schema.Version, kafka.SchemaVersion)
	}
	for _, v := range variants {
		m := parse(t, v.data)
		if m["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema = %v", v.name, m["$schema"])
		}
		if m["$id"] != v.id {
			t.Errorf("%s: $id = %v, want %s", v.name, m["$id"], v.id)
		}
		if m["version"] != schema.Version {
			t.Errorf("%s: version = %v, want %s", v.name, m["version"], schema.Version)
		}
		if s, _ := m["title"].(string); s == "" {
			t.Errorf("%s: no title", v.name)
		}
		compileVariant(t, v)
	}
}

// strictFrom derives the strict schema from the tolerant one: the same
// schema with additionalProperties false on every object of fixed
// properties, its own $id and title, and a comment saying so.
func strictFrom(tolerant map[string]any) map[string]any {
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(x)+1)
			for k, e := range x {
				out[k] = walk(e)
			}
			if _, fixed := x["properties"]; fixed && x["type"] == "object" {
				out["additionalProperties"] = false
			}
			return out
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = walk(e)
			}
			return out
		}
		return v
	}
	s := walk(tolerant).(map[string]any)
	s["$id"] = schema.StrictID
	s["title"] = tolerant["title"].(string) + " (strict)"
	s["$comment"] = "Generated from ecs-event.schema.json by 'go test ./schema -run TestStrictSchema -update': the same schema with no property allowed that it does not define. The project's tests validate what the exporter emits against it; consumers use ecs-event.schema.json."
	return s
}

// TestStrictSchema: the strict schema is the tolerant one with
// additionalProperties false on every object of fixed properties, and the
// tolerant one forbids no additional property anywhere, so the two differ
// only in additionalProperties (and their $id, title and comment).
func TestStrictSchema(t *testing.T) {
	tol := parse(t, schema.ECSEvent)
	want := strictFrom(tol)
	if *update {
		b, err := json.MarshalIndent(want, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("ecs-event.strict.schema.json", append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got := parse(t, schema.ECSEventStrict); !reflect.DeepEqual(got, want) {
		t.Errorf("ecs-event.strict.schema.json is not derived from ecs-event.schema.json: run go test ./schema -run TestStrictSchema -update")
	}
	var forbid func(path string, v any)
	forbid = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if ap, ok := x["additionalProperties"]; ok && ap == false {
				t.Errorf("tolerant schema forbids additional properties at %s", path)
			}
			for k, e := range x {
				forbid(path+"/"+k, e)
			}
		case []any:
			for _, e := range x {
				forbid(path+"/[]", e)
			}
		}
	}
	forbid("#", tol)
}

// resolve follows a local "$ref": "#/$defs/name".
func resolve(t *testing.T, root, node map[string]any) map[string]any {
	t.Helper()
	ref, ok := node["$ref"].(string)
	if !ok {
		return node
	}
	name, found := strings.CutPrefix(ref, "#/$defs/")
	if !found {
		t.Fatalf("unexpected $ref %s", ref)
	}
	def, ok := root["$defs"].(map[string]any)[name].(map[string]any)
	if !ok {
		t.Fatalf("$ref %s not found", ref)
	}
	return def
}

// TestSchemaMatchesEvent walks ecs.Event's JSON fields and each schema's
// property tree together: same properties, same types, required exactly
// for the fields that are always encoded; the strict schema allows no other
// properties, the tolerant one allows them everywhere.
func TestSchemaMatchesEvent(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) { matchEvent(t, v) })
	}
}

func matchEvent(t *testing.T, v variant) {
	root := parse(t, v.data)
	var walk func(path string, typ reflect.Type, node map[string]any)
	walk = func(path string, typ reflect.Type, node map[string]any) {
		node = resolve(t, root, node)
		switch typ.Kind() {
		case reflect.Pointer:
			walk(path, typ.Elem(), node)
		case reflect.Bool:
			if node["type"] != "boolean" {
				t.Errorf("%s: schema type %v, want boolean", path, node["type"])
			}
		case reflect.Int64:
			if node["type"] != "integer" {
				t.Errorf("%s: schema type %v, want integer", path, node["type"])
			}
			if node["minimum"] == nil || node["maximum"] == nil {
				t.Errorf("%s: integer without minimum and maximum", path)
			}
		case reflect.Float64:
			if node["type"] != "number" {
				t.Errorf("%s: schema type %v, want number", path, node["type"])
			}
			if node["minimum"] == nil || node["maximum"] == nil {
				t.Errorf("%s: number without minimum and maximum", path)
			}
		case reflect.String:
			if node["type"] != "string" {
				t.Errorf("%s: schema type %v, want string", path, node["type"])
			}
			if node["minLength"] == nil && node["enum"] == nil && node["const"] == nil && node["pattern"] == nil {
				t.Errorf("%s: string without minLength, enum, const or pattern admits \"\"", path)
			}
		case reflect.Slice:
			if node["type"] != "array" {
				t.Errorf("%s: schema type %v, want array", path, node["type"])
			}
			if node["minItems"] != float64(1) {
				t.Errorf("%s: minItems %v, want 1", path, node["minItems"])
			}
			items, _ := node["items"].(map[string]any)
			if items == nil {
				t.Errorf("%s: no items schema", path)
				return
			}
			walk(path+"[]", typ.Elem(), items)
		case reflect.Map:
			if typ.Key().Kind() != reflect.String || typ.Elem().Kind() != reflect.String {
				t.Fatalf("%s: unexpected map type %s", path, typ)
			}
			if node["type"] != "object" || node["properties"] != nil {
				t.Errorf("%s: want an object schema without fixed properties", path)
			}
			ap, _ := node["additionalProperties"].(map[string]any)
			if ap == nil {
				t.Errorf("%s: additionalProperties must be a schema for the values", path)
				return
			}
			walk(path+".*", typ.Elem(), ap)
			if node["minProperties"] != float64(1) {
				t.Errorf("%s: minProperties %v, want 1", path, node["minProperties"])
			}
		case reflect.Struct:
			if node["type"] != "object" {
				t.Errorf("%s: schema type %v, want object", path, node["type"])
			}
			ap, set := node["additionalProperties"]
			switch {
			case v.strict && ap != false:
				t.Errorf("%s: additionalProperties must be false in the strict schema", path)
			case !v.strict && set:
				t.Errorf("%s: the tolerant schema must leave additionalProperties out (got %v)", path, ap)
			}
			props, _ := node["properties"].(map[string]any)
			var fields, required []string
			for i := range typ.NumField() {
				f := typ.Field(i)
				name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
				if name == "-" || !f.IsExported() {
					continue
				}
				fields = append(fields, name)
				if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
					required = append(required, name)
				}
				p, ok := props[name].(map[string]any)
				if !ok {
					t.Errorf("%s.%s: field of ecs.Event missing from the schema", path, name)
					continue
				}
				walk(path+"."+name, f.Type, p)
			}
			for name := range props {
				if !slices.Contains(fields, name) {
					t.Errorf("%s.%s: in the schema but not in ecs.Event", path, name)
				}
			}
			var req []string
			if r, ok := node["required"].([]any); ok {
				for _, x := range r {
					req = append(req, x.(string))
				}
			}
			sort.Strings(req)
			sort.Strings(required)
			if !slices.Equal(req, required) {
				t.Errorf("%s: required %v, want %v (the fields encoded even when empty)", path, req, required)
			}
			if len(required) == 0 && node["minProperties"] != float64(1) {
				t.Errorf("%s: an object of optional fields needs minProperties 1", path)
			}
		default:
			t.Fatalf("%s: Go type %s not handled", path, typ)
		}
	}
	walk("", reflect.TypeOf(ecs.Event{}), root)
}

// full is a document with every field set.
func full() ecs.Event {
	return ecs.Event{
		Timestamp: "2026-11-02T08:00:08.3103016Z",
		ECS:       ecs.ECSMeta{Version: ecs.Version},
		Event: ecs.EventMeta{
			Kind: "event", Category: []string{"iam"}, Type: []string{"user", "change"},
			Action: "password-reset", Outcome: "failure", ID: "SSPR_x", Reason: "FuzzyPolicyViolationInvalidPassword",
			Provider: "Self-service Password Management", Dataset: ecs.Dataset, Original: `{"a":1}`,
		},
		User: ecs.User{
			ID: "u1", Name: "a@contoso.example", FullName: "A B", Domain: "contoso.example",
			Target: ecs.TargetUser{
				ID: "u2", Name: "c@contoso.example", FullName: "C D", Domain: "contoso.example",
				Group: ecs.TargetGroup{ID: []string{"g1", "g2"}, Name: []string{"Helpdesk", "Staff"}},
				Roles: []string{"Helpdesk Administrator"},
			},
		},
		Related: ecs.Related{User: []string{"u1", "u2"}, IP: []string{"203.0.113.10", "2001:db8::1"}},
		Source: ecs.Source{
			IP: "2001:db8::1",
			Geo: ecs.Geo{
				CityName: "Montreal", CountryISOCode: "CA", CountryName: "Canada", RegionISOCode: "CA-QC", RegionName: "Quebec",
				Location: &ecs.GeoPoint{Lat: 45.505918, Lon: -73.61483},
			},
			AS: ecs.AS{Number: 64496, Organization: ecs.ASOrganization{Name: "Example AS"}},
		},
		Cloud:     ecs.Cloud{Provider: "azure", Account: ecs.CloudAccount{ID: "tenant"}},
		UserAgent: ecs.UserAgent{Original: "Mozilla/5.0"},
		Azure: ecs.Azure{
			CorrelationID: "c", TenantID: "tenant", ResourceID: "/tenants/tenant/providers/Microsoft.aadiam",
			AuditLogs: ecs.AuditLogs{
				Category: "UserManagement", OperationName: "Reset password (self-service)", OperationType: "Update",
				OperationVersion: "1.0", Result: "failure", ResultReason: "r", LoggedByService: "Self-service Password Management",
				AdditionalDetails: map[string]string{"User-Agent": "Mozilla/5.0"},
				InitiatedBy:       ecs.InitiatedBy{App: ecs.App{AppID: "a", DisplayName: "d", ServicePrincipalID: "s", ServicePrincipalName: "n"}},
				TargetResources: []ecs.TargetResource{{
					ID: "u2", DisplayName: "C D", Type: "User", UserPrincipalName: "c@contoso.example", GroupType: "g",
					ModifiedProperties: []ecs.ModifiedProperty{{DisplayName: "p", OldValue: "o", NewValue: "n"}},
				}},
			},
		},
		Entra: ecs.Entra{SSPR: ecs.SSPR{
			Initiator: "user", Step: "method-verified", Method: "mobile-sms", Blocked: true,
			Flow: ecs.Flow{ID: "c"}, Writeback: "entra-connect",
		}},
	}
}

// zeroFields lists the exported fields of v that are zero, recursively, so
// that full() keeps covering every field as the struct grows.
func zeroFields(path string, v reflect.Value) []string {
	var out []string
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Tag.Get("json") == "-" {
				continue
			}
			out = append(out, zeroFields(path+"."+f.Name, v.Field(i))...)
		}
	case reflect.Slice:
		if v.Len() == 0 {
			return []string{path}
		}
		out = append(out, zeroFields(path+"[0]", v.Index(0))...)
	default:
		if v.IsZero() {
			return []string{path}
		}
	}
	return out
}

func instance(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	x, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestFullDocumentValid(t *testing.T) {
	d := full()
	if z := zeroFields("Event", reflect.ValueOf(d)); len(z) > 0 {
		t.Fatalf("full() leaves fields unset: %v", z)
	}
	min := ecs.Event{Timestamp: "2026-11-02T08:00:08Z", ECS: ecs.ECSMeta{Version: ecs.Version}, Event: ecs.EventMeta{
		Kind: "event", Category: []string{"iam"}, Type: []string{"info"}, Action: "x", Outcome: "unknown", ID: "i", Dataset: ecs.Dataset,
	}}
	for _, v := range variants {
		sch := compileVariant(t, v)
		if err := sch.Validate(instance(t, d)); err != nil {
			t.Errorf("%s: full document rejected: %v", v.name, err)
		}
		if err := sch.Validate(instance(t, min)); err != nil {
			t.Errorf("%s: minimal document rejected: %v", v.name, err)
		}
	}
}

// TestSchemaRejects: each mutation of a valid document must be refused by
// both schemas: a field removed, retyped, emptied, or given a value its
// type does not allow.
func TestSchemaRejects(t *testing.T) {
	cases := map[string]func(m map[string]any){
		"event.id a number":        func(m map[string]any) { obj(m, "event")["id"] = 7 },
		"event.type a string":      func(m map[string]any) { obj(m, "event")["type"] = "user" },
		"user an array":            func(m map[string]any) { m["user"] = []any{"x"} },
		"empty string":             func(m map[string]any) { obj(m, "user")["name"] = "" },
		"null":                     func(m map[string]any) { obj(m, "user")["name"] = nil },
		"empty array":              func(m map[string]any) { obj(m, "related")["user"] = []any{} },
		"empty object":             func(m map[string]any) { m["user_agent"] = map[string]any{} },
		"empty nested object":      func(m map[string]any) { obj(m, "user")["target"] = map[string]any{} },
		"missing event.id":         func(m map[string]any) { delete(obj(m, "event"), "id") },
		"missing @timestamp":       func(m map[string]any) { delete(m, "@timestamp") },
		"missing ecs.version":      func(m map[string]any) { delete(obj(m, "ecs"), "version") },
		"timestamp with offset":    func(m map[string]any) { m["@timestamp"] = "2026-11-02T08:00:08+00:00" },
		"timestamp without zone":   func(m map[string]any) { m["@timestamp"] = "2026-11-02T08:00:08" },
		"timestamp 10 digits":      func(m map[string]any) { m["@timestamp"] = "2026-11-02T08:00:08.1234567890Z" },
		"timestamp not a date":     func(m map[string]any) { m["@timestamp"] = "2026-13-02T08:00:08Z" },
		"kind alert":               func(m map[string]any) { obj(m, "event")["kind"] = "alert" },
		"category authentication":  func(m map[string]any) { obj(m, "event")["category"] = []any{"authentication"} },
		"type start":               func(m map[string]any) { obj(m, "event")["type"] = []any{"start"} },
		"outcome ok":               func(m map[string]any) { obj(m, "event")["outcome"] = "ok" },
		"action with spaces":       func(m map[string]any) { obj(m, "event")["action"] = "Reset password" },
		"other dataset":            func(m map[string]any) { obj(m, "event")["dataset"] = "azure.auditlogs" },
		"bad ip":                   func(m map[string]any) { obj(m, "source")["ip"] = "<null>" },
		"bad related ip":           func(m map[string]any) { obj(m, "related")["ip"] = []any{"1.2.3"} },
		"additional detail empty":  func(m map[string]any) { obj(obj(obj(m, "azure"), "auditlogs"), "additional_details")["k"] = "" },
		"additional detail number": func(m map[string]any) { obj(obj(obj(m, "azure"), "auditlogs"), "additional_details")["k"] = 1 },
		"additional details empty": func(m map[string]any) { obj(obj(m, "azure"), "auditlogs")["additional_details"] = map[string]any{} },
		"empty target resource": func(m map[string]any) {
			obj(obj(m, "azure"), "auditlogs")["target_resources"] = []any{map[string]any{}}
		},
		"duplicate category": func(m map[string]any) { obj(m, "event")["category"] = []any{"iam", "iam"} },
		"latitude out of range": func(m map[string]any) {
			obj(obj(obj(m, "source"), "geo"), "location")["lat"] = 91
		},
		"longitude missing":  func(m map[string]any) { delete(obj(obj(obj(m, "source"), "geo"), "location"), "lon") },
		"AS number zero":     func(m map[string]any) { obj(obj(m, "source"), "as")["number"] = 0 },
		"AS number a string": func(m map[string]any) { obj(obj(m, "source"), "as")["number"] = "64496" },
		"AS number fraction": func(m map[string]any) { obj(obj(m, "source"), "as")["number"] = 1.5 },
		"empty group list":   func(m map[string]any) { obj(obj(obj(m, "user"), "target"), "group")["name"] = []any{} },
		"duplicate role":     func(m map[string]any) { obj(obj(m, "user"), "target")["roles"] = []any{"r", "r"} },
		"unknown initiator":  func(m map[string]any) { obj(obj(m, "entra"), "sspr")["initiator"] = "system" },
		"step with spaces":   func(m map[string]any) { obj(obj(m, "entra"), "sspr")["step"] = "User submitted their user ID" },
		"blocked a string":   func(m map[string]any) { obj(obj(m, "entra"), "sspr")["blocked"] = "true" },
		"unknown writeback":  func(m map[string]any) { obj(obj(m, "entra"), "sspr")["writeback"] = "Microsoft Entra Connect" },
		"category other":     func(m map[string]any) { obj(m, "event")["category"] = []any{"network"} },
	}
	for _, v := range variants {
		sch := compileVariant(t, v)
		for name, mutate := range cases {
			t.Run(v.name+"/"+name, func(t *testing.T) {
				m := fullMap(t)
				mutate(m)
				if err := sch.Validate(instance(t, m)); err == nil {
					t.Errorf("accepted")
				}
			})
		}
	}
}

// fullMap is full() as generic JSON, to be changed by a test.
func fullMap(t *testing.T) map[string]any {
	t.Helper()
	b, err := json.Marshal(full())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// objectPaths lists every object of a document (array elements included),
// by path, except additional_details, whose keys are open in both schemas.
func objectPaths(prefix string, v any, visit func(path string, obj map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		if strings.HasSuffix(prefix, "additional_details") {
			return
		}
		visit(prefix, x)
		for k, e := range x {
			objectPaths(prefix+"/"+k, e, visit)
		}
	case []any:
		for i, e := range x {
			objectPaths(prefix+"/"+strconv.Itoa(i), e, visit)
		}
	}
}

// TestAdditiveChanges: a document of a later minor version, with a new
// optional field in any object or a new event.action, still validates
// against the tolerant schema consumers use; the strict schema of the
// project's tests refuses the new field.
func TestAdditiveChanges(t *testing.T) {
	tol, str := compileVariant(t, tolerant), compileVariant(t, strict)
	var paths []string
	objectPaths("#", fullMap(t), func(path string, _ map[string]any) { paths = append(paths, path) })
	if len(paths) < 15 {
		t.Fatalf("only %d objects in the full document: %v", len(paths), paths)
	}
	for _, path := range paths {
		t.Run("new field in "+path, func(t *testing.T) {
			m := fullMap(t)
			objectPaths("#", m, func(p string, o map[string]any) {
				if p == path {
					o["new_optional_field"] = map[string]any{"any": []any{"shape", 1, true}}
				}
			})
			if err := tol.Validate(instance(t, m)); err != nil {
				t.Errorf("tolerant schema refuses a new field: %v", err)
			}
			if err := str.Validate(instance(t, m)); err == nil {
				t.Error("strict schema accepts a field it does not define")
			}
		})
	}
	m := fullMap(t)
	obj(m, "event")["action"] = "passkey-registered"
	for _, v := range variants {
		if err := compileVariant(t, v).Validate(instance(t, m)); err != nil {
			t.Errorf("%s: new event.action refused: %v", v.name, err)
		}
	}
}

func obj(m map[string]any, key string) map[string]any {
	return m[key].(map[string]any)
}

// BenchmarkValidate measures validating one full document against the
// published schema, for callers that consider checking documents at run time.
func BenchmarkValidate(b *testing.B) {
	sch, err := schema.Published()
	if err != nil {
		b.Fatal(err)
	}
	raw, err := json.Marshal(full())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			b.Fatal(err)
		}
		if err := sch.Validate(inst); err != nil {
			b.Fatal(err)
		}
	}
}
