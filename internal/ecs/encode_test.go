package ecs_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/gen"
	"github.com/sspr-exporter/sspr-exporter/internal/pipeline"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/testdata"
)

// stdJSON is the reference: encoding/json with HTML escaping off, without
// the encoder's trailing newline.
func stdJSON(tb testing.TB, ev *ecs.Event) []byte {
	tb.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		tb.Fatalf("encoding/json: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

func checkSame(tb testing.TB, name string, ev *ecs.Event) {
	tb.Helper()
	want := stdJSON(tb, ev)
	got := ev.AppendJSON(nil)
	if !bytes.Equal(got, want) {
		tb.Fatalf("%s: AppendJSON differs from encoding/json\n got: %s\nwant: %s\nfirst difference at byte %d", name, got, want, firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func decodeFile(tb testing.TB, path string, opts sspr.Options) []ecs.Event {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read %s: %v", path, err)
	}
	cat, err := sspr.NewCatalog(nil)
	if err != nil {
		tb.Fatalf("catalog: %v", err)
	}
	d := pipeline.Decoder{Catalog: cat, Normalize: opts, Now: time.Now}
	return d.Decode([]stream.Body{{Data: data, Pos: stream.Position{Kind: "file", File: path, Line: 1}}}).Docs
}

// corpusDocs decodes every JSON/NDJSON input under dir (recursively), once
// with default options and once with a default tenant (which Graph pages
// need to yield documents).
func corpusDocs(tb testing.TB, dir string) map[string][]ecs.Event {
	tb.Helper()
	out := map[string][]ecs.Event{}
	err := filepath.WalkDir(dir, func(path string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		switch filepath.Ext(path) {
		case ".json", ".log":
		default:
			return nil
		}
		out[path] = append(decodeFile(tb, path, sspr.Options{}),
			decodeFile(tb, path, sspr.Options{DefaultTenantID: "50a74cff-026f-4c84-aa8f-f5f8d837115f"})...)
		return nil
	})
	if err != nil {
		tb.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

func TestAppendJSONCorpus(t *testing.T) {
	check := func(t *testing.T, dir string) {
		n := 0
		for path, docs := range corpusDocs(t, dir) {
			for i := range docs {
				checkSame(t, fmt.Sprintf("%s doc %d", path, i), &docs[i])
				n++
			}
		}
		if n == 0 {
			t.Fatalf("no documents decoded from %s", dir)
		}
		t.Logf("%d documents from %s", n, dir)
	}
	t.Run("project", func(t *testing.T) { check(t, testdata.Project(t)) })
	t.Run("shared", func(t *testing.T) { check(t, testdata.Shared(t)) })
	t.Run("golden", func(t *testing.T) {
		// The golden files are documents already; decoding them back into
		// Events and re-encoding must reproduce each line exactly.
		n := 0
		for _, path := range testdata.Files(t, filepath.Join(testdata.Project(t), "golden"), "*.ndjson") {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range bytes.Split(bytes.TrimSpace(data), []byte{'\n'}) {
				var ev ecs.Event
				if err := json.Unmarshal(line, &ev); err != nil {
					t.Fatalf("%s line %d: %v", path, i+1, err)
				}
				checkSame(t, fmt.Sprintf("%s line %d", path, i+1), &ev)
				if got := ev.AppendJSON(nil); !bytes.Equal(got, line) {
					t.Fatalf("%s line %d: re-encoded line differs\n got: %s\nwant: %s", path, i+1, got, line)
				}
				n++
			}
		}
		t.Logf("%d golden documents", n)
	})
	t.Run("generated", func(t *testing.T) {
		docs := generatedDocs(t, 5000, 7)
		for i := range docs {
			checkSame(t, fmt.Sprintf("generated doc %d", i), &docs[i])
		}
	})
}

func generatedDocs(tb testing.TB, records int, seed uint64) []ecs.Event {
	tb.Helper()
	var buf bytes.Buffer
	if _, err := gen.Write(&buf, gen.Options{Records: records, PerBody: 100, SSPRShare: 0.5, Seed: seed}, false); err != nil {
		tb.Fatal(err)
	}
	var bodies []stream.Body
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte{'\n'}) {
		bodies = append(bodies, stream.Body{Data: line, Pos: stream.Position{Kind: "eventhubs", Partition: "0"}})
	}
	cat, err := sspr.NewCatalog(nil)
	if err != nil {
		tb.Fatal(err)
	}
	d := pipeline.Decoder{Catalog: cat, Now: time.Now}
	docs := d.Decode(bodies).Docs
	if len(docs) == 0 {
		tb.Fatal("generator produced no documents")
	}
	return docs
}

// trickyStrings covers every escaping rule of encoding/json.
var trickyStrings = func() []string {
	s := []string{
		"", "plain", `"quoted"`, `back\slash`, `\"`, "<script>&amp;</script>",
		"line\nbreak", "cr\rtab\t", "\b\f", "\x00", "\x7f", "del\x7fete",
		"\u2028", "a\u2029b", "\u2027\u202a", "é", "日本語", "🔑 emoji", "\ufffd",
		"\xff", "a\xc3", "\xc3\x28", "\xe2\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
		"\xc0\xaf", "mixed \xff\u2028\"\n<é>", strings.Repeat("long ", 200),
	}
	var all []byte
	for b := range 0x20 {
		s = append(s, string([]byte{byte(b)}), "x"+string([]byte{byte(b)})+"y")
		all = append(all, byte(b))
	}
	return append(s, string(all))
}()

func TestAppendJSONTrickyStrings(t *testing.T) {
	for i, s := range trickyStrings {
		ev := ecs.Event{
			Timestamp: s,
			ECS:       ecs.ECSMeta{Version: s},
			Event:     ecs.EventMeta{Kind: s, Category: []string{s, s}, ID: s, Reason: s, Original: s},
			User:      ecs.User{Target: ecs.TargetUser{FullName: s}},
			Related:   ecs.Related{IP: []string{s}},
			Source:    ecs.Source{IP: s},
			UserAgent: ecs.UserAgent{Original: s},
			Azure: ecs.Azure{AuditLogs: ecs.AuditLogs{
				AdditionalDetails: map[string]string{s: s, s + "k": "v", "a" + s: ""},
				TargetResources:   []ecs.TargetResource{{ModifiedProperties: []ecs.ModifiedProperty{{OldValue: s}}}},
			}},
		}
		checkSame(t, fmt.Sprintf("string %d %q", i, s), &ev)
	}
}

// TestAppendJSONEveryByte puts every byte value, and runes that need care,
// at every offset of a string spanning several eight-byte chunks, so that
// the chunked scan is checked at each position.
func TestAppendJSONEveryByte(t *testing.T) {
	const base = "abcdefghijklmnopqrstuvwx"
	var specials []string
	for b := range 256 {
		specials = append(specials, string([]byte{byte(b)}))
	}
	specials = append(specials, "é", "\u2028", "\u2029", "🔑", "\ufffd", "\xe2\x80", "\xf0\x9f")
	for _, sp := range specials {
		for pos := range len(base) {
			s := base[:pos] + sp + base[pos:]
			ev := ecs.Event{Timestamp: s, Event: ecs.EventMeta{Original: s[:pos+len(sp)]}}
			checkSame(t, fmt.Sprintf("%q at %d", sp, pos), &ev)
		}
	}
}

// TestAppendJSONEscapes pins a few encodings literally, so that both
// encoders agreeing on something wrong would still be noticed.
func TestAppendJSONEscapes(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"<a&b>", `"<a&b>"`},
		{"q\"b\\", `"q\"b\\"`},
		{"\n\r\t", `"\n\r\t"`},
		{"\x01\x1f", `"\u0001\u001f"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"a\xffb", `"a\ufffdb"`},
		{"日本", `"日本"`},
	} {
		ev := ecs.Event{Timestamp: tc.in}
		got := string(ev.AppendJSON(nil))
		prefix := `{"@timestamp":` + tc.want + `,`
		if !strings.HasPrefix(got, prefix) {
			t.Errorf("%q: got %s, want prefix %s", tc.in, got, prefix)
		}
	}
}

func TestAppendJSONEmptyVersusAbsent(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   ecs.Event
		want string // a fragment the output must hold; "" for none
		not  string // a fragment it must not hold
	}{
		{name: "zero event", want: `"category":null,"type":null`, not: `"user"`},
		{name: "empty non-nil slices", ev: ecs.Event{Event: ecs.EventMeta{Category: []string{}, Type: []string{}}}, want: `"category":[],"type":[]`},
		{name: "related with empty non-nil slice", ev: ecs.Event{Related: ecs.Related{User: []string{}}}, want: `"related":{}`},
		{name: "related nil slices", ev: ecs.Event{Related: ecs.Related{}}, not: `"related"`},
		{name: "auditlogs with empty non-nil map", ev: ecs.Event{Azure: ecs.Azure{AuditLogs: ecs.AuditLogs{AdditionalDetails: map[string]string{}}}}, want: `"azure":{"auditlogs":{}}`},
		{name: "auditlogs with empty non-nil resources", ev: ecs.Event{Azure: ecs.Azure{AuditLogs: ecs.AuditLogs{TargetResources: []ecs.TargetResource{}}}}, want: `"azure":{"auditlogs":{}}`},
		{name: "empty target resource", ev: ecs.Event{Azure: ecs.Azure{AuditLogs: ecs.AuditLogs{TargetResources: make([]ecs.TargetResource, 2)}}}, want: `"target_resources":[{},{}]`},
		{name: "empty modified property", ev: ecs.Event{Azure: ecs.Azure{AuditLogs: ecs.AuditLogs{TargetResources: []ecs.TargetResource{{ModifiedProperties: make([]ecs.ModifiedProperty, 1)}}}}}, want: `"modified_properties":[{}]`},
		{name: "only target user", ev: ecs.Event{User: ecs.User{Target: ecs.TargetUser{Domain: "d"}}}, want: `"user":{"target":{"domain":"d"}}`},
		{name: "only cloud account", ev: ecs.Event{Cloud: ecs.Cloud{Account: ecs.CloudAccount{ID: "t"}}}, want: `"cloud":{"account":{"id":"t"}}`},
		{name: "only app", ev: ecs.Event{Azure: ecs.Azure{AuditLogs: ecs.AuditLogs{InitiatedBy: ecs.InitiatedBy{App: ecs.App{ServicePrincipalName: "s"}}}}}, want: `"initiated_by":{"app":{"service_principal_name":"s"}}`},
		{name: "geo point and AS number", ev: ecs.Event{Source: ecs.Source{Geo: ecs.Geo{Location: &ecs.GeoPoint{Lat: 45.505918, Lon: -73.61483}}, AS: ecs.AS{Number: 64496}}}, want: `"source":{"geo":{"location":{"lat":45.505918,"lon":-73.61483}},"as":{"number":64496}}`},
		{name: "geo point at zero", ev: ecs.Event{Source: ecs.Source{Geo: ecs.Geo{Location: &ecs.GeoPoint{}}}}, want: `"location":{"lat":0,"lon":0}`},
		{name: "tiny coordinate in exponent form", ev: ecs.Event{Source: ecs.Source{Geo: ecs.Geo{Location: &ecs.GeoPoint{Lat: 1e-7, Lon: -2.5e-10}}}}, want: `"location":{"lat":1e-7,"lon":-2.5e-10}`},
		{name: "blocked only when true", ev: ecs.Event{Entra: ecs.Entra{SSPR: ecs.SSPR{Blocked: true}}}, want: `"entra":{"sspr":{"blocked":true}}`},
		{name: "blocked false is absent", ev: ecs.Event{Entra: ecs.Entra{SSPR: ecs.SSPR{Blocked: false}}}, not: `"entra"`},
		{name: "target groups and roles", ev: ecs.Event{User: ecs.User{Target: ecs.TargetUser{Group: ecs.TargetGroup{Name: []string{"a", "b"}}, Roles: []string{"r"}}}}, want: `"user":{"target":{"group":{"name":["a","b"]},"roles":["r"]}}`},
		{name: "empty non-nil roles keep the target", ev: ecs.Event{User: ecs.User{Target: ecs.TargetUser{Roles: []string{}}}}, want: `"user":{"target":{}}`},
		{name: "time is never encoded", ev: ecs.Event{Time: time.Unix(1, 0)}, not: `"Time"`},
		{name: "map keys sorted and escaped", ev: ecs.Event{Azure: ecs.Azure{AuditLogs: ecs.AuditLogs{AdditionalDetails: map[string]string{
			"b": "2", "a\"q": "1", "A": "0", "\n": "nl", "é": "e", "\xff": "bad", "\u2028": "ls", "": "empty",
		}}}}, want: `"additional_details":{"":"empty","\n":"nl","A":"0","a\"q":"1","b":"2","é":"e","\u2028":"ls","\ufffd":"bad"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkSame(t, tc.name, &tc.ev)
			got := string(tc.ev.AppendJSON(nil))
			if tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("got %s, want it to contain %s", got, tc.want)
			}
			if tc.not != "" && strings.Contains(got, tc.not) {
				t.Errorf("got %s, want it not to contain %s", got, tc.not)
			}
		})
	}
}

func TestAppendJSONLargeMap(t *testing.T) {
	m := map[string]string{}
	for i := range 100 {
		m[fmt.Sprintf("key-%03d\t", 99-i)] = fmt.Sprint(i)
	}
	ev := ecs.Event{Azure: ecs.Azure{AuditLogs: ecs.AuditLogs{AdditionalDetails: m}}}
	checkSame(t, "large map", &ev)
}

func TestAppendJSONAppends(t *testing.T) {
	ev := ecs.Event{Timestamp: "t", Event: ecs.EventMeta{ID: "x"}}
	got := ev.AppendJSON([]byte("prefix "))
	want := "prefix " + string(stdJSON(t, &ev))
	if string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestAppendJSONNoAllocs(t *testing.T) {
	docs := generatedDocs(t, 2000, 3)
	// A document with a map exercises the key sort too.
	docs = append(docs, ecs.Event{Azure: ecs.Azure{AuditLogs: ecs.AuditLogs{AdditionalDetails: map[string]string{"z": "1", "a": "2", "m": "3"}}}})
	buf := make([]byte, 0, 1<<16)
	for i := range docs {
		allocs := testing.AllocsPerRun(20, func() { buf = docs[i].AppendJSON(buf[:0]) })
		if allocs != 0 {
			t.Fatalf("doc %d: %v allocations per AppendJSON, want 0", i, allocs)
		}
	}
}

// filler populates any value reflectively from a byte stream, choosing for
// every string, slice and map whether it is absent, empty or set. Being
// reflective, it reaches fields added to ecs.Event later without changes.
type filler struct {
	data []byte
	strs []string
}

func (f *filler) next() byte {
	if len(f.data) == 0 {
		return 0
	}
	b := f.data[0]
	f.data = f.data[1:]
	return b
}

func (f *filler) fill(tb testing.TB, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if b := f.next(); b%4 != 0 {
			v.SetString(f.strs[int(b>>2)%len(f.strs)])
		}
	case reflect.Slice:
		b := f.next()
		switch b % 4 {
		case 0: // nil
		case 1:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			n := 1 + int(b>>2)%3
			v.Set(reflect.MakeSlice(v.Type(), n, n))
			for i := range n {
				f.fill(tb, v.Index(i))
			}
		}
	case reflect.Map:
		b := f.next()
		switch b % 4 {
		case 0:
		case 1:
			v.Set(reflect.MakeMap(v.Type()))
		default:
			m := reflect.MakeMap(v.Type())
			for range 1 + int(b>>2)%5 {
				k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
				f.fill(tb, k)
				f.fill(tb, e)
				m.SetMapIndex(k, e)
			}
			v.Set(m)
		}
	case reflect.Bool:
		v.SetBool(f.next()%2 == 1)
	case reflect.Int64:
		// Zero, small, negative and extreme values.
		v.SetInt([]int64{0, 1, 64496, -7, math.MaxInt64, math.MinInt64}[int(f.next())%6])
	case reflect.Float64:
		// Zero (both signs), integers, fractions and the ranges where
		// encoding/json switches to exponent form.
		v.SetFloat([]float64{0, math.Copysign(0, -1), 1, -90, 180, 45.505918, -73.61483, 1e-7, -1.5e-9, 1e21, 123456789.125, 5e-324}[int(f.next())%12])
	case reflect.Pointer:
		if b := f.next(); b%2 == 1 {
			v.Set(reflect.New(v.Type().Elem()))
			f.fill(tb, v.Elem())
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).Tag.Get("json") == "-" {
				continue
			}
			f.fill(tb, v.Field(i))
		}
	default:
		tb.Fatalf("filler: %s has kind %s, which neither the filler nor AppendJSON handle", v.Type(), v.Kind())
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, "a", "<b>&\"\\", "\u2028\xff\n")
	f.Add(bytes.Repeat([]byte{0xff}, 200), "é", "\x00\x1f", "")
	f.Add(bytes.Repeat([]byte{2, 6, 10, 3}, 80), "k", "k", "v")
	f.Fuzz(func(t *testing.T, data []byte, s1, s2, s3 string) {
		fl := filler{data: data, strs: []string{s1, s2, s3, "", "x"}}
		var ev ecs.Event
		fl.fill(t, reflect.ValueOf(&ev).Elem())
		checkSame(t, "fuzz", &ev)
	})
}

// jsonPaths lists the dotted leaf paths a type can produce: strings,
// string slices and maps are leaves; structs and struct slices are walked.
func jsonPaths(tb testing.TB, t reflect.Type, prefix string, out map[string]bool) {
	tb.Helper()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		path := prefix + name
		ft := f.Type
		if (ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer) && ft.Elem().Kind() == reflect.Struct {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Struct:
			jsonPaths(tb, ft, path+".", out)
		case reflect.String, reflect.Map, reflect.Bool, reflect.Int64, reflect.Float64:
			out[path] = true
		case reflect.Slice:
			if ft.Elem().Kind() != reflect.String {
				tb.Fatalf("field %s: slice of %s is not handled", path, ft.Elem())
			}
			out[path] = true
		default:
			tb.Fatalf("field %s: kind %s is not handled", path, ft.Kind())
		}
	}
}

// emittedPaths lists the dotted leaf paths of a decoded JSON value; arrays
// of objects share their element paths, maps (additional_details) end a
// path only where the schema says so.
func emittedPaths(v any, prefix string, leaves map[string]bool, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		p := strings.TrimSuffix(prefix, ".")
		if leaves[p] {
			out[p] = true
			return
		}
		for k, e := range x {
			emittedPaths(e, prefix+k+".", leaves, out)
		}
	case []any:
		for _, e := range x {
			emittedPaths(e, prefix, leaves, out)
		}
		if len(x) == 0 {
			out[strings.TrimSuffix(prefix, ".")] = true
		}
	default:
		out[strings.TrimSuffix(prefix, ".")] = true
	}
}

// TestAppendJSONKnowsEveryField fails when ecs.Event (or a type within it)
// gains a field AppendJSON does not emit: a fully populated document must
// produce every JSON path of the struct, and each field set on its own must
// encode as encoding/json does.
func TestAppendJSONKnowsEveryField(t *testing.T) {
	want := map[string]bool{}
	jsonPaths(t, reflect.TypeFor[ecs.Event](), "", want)

	// Every string set, every slice with two elements, every map with two
	// entries.
	fl := filler{data: bytes.Repeat([]byte{0x07}, 10000), strs: []string{"v"}}
	var full ecs.Event
	fl.fill(t, reflect.ValueOf(&full).Elem())
	checkSame(t, "fully populated", &full)

	var decoded any
	if err := json.Unmarshal(full.AppendJSON(nil), &decoded); err != nil {
		t.Fatalf("AppendJSON output is not JSON: %v", err)
	}
	got := map[string]bool{}
	emittedPaths(decoded, "", want, got)
	if !maps(got, want) {
		t.Fatalf("emitted paths differ from the struct's\n missing: %v\n extra: %v", diff(want, got), diff(got, want))
	}

	// Each leaf alone: a string, slice or map set in an otherwise zero
	// document, which also checks each omitzero parent is kept.
	count := 0
	var each func(v reflect.Value, path string)
	each = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).Tag.Get("json") == "-" {
					continue
				}
				each(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		case reflect.Pointer:
			v.Set(reflect.New(v.Type().Elem()))
			checkSame(t, path+" (zero value)", &full)
			each(v.Elem(), path+"*")
			v.Set(reflect.Zero(v.Type()))
		case reflect.Slice:
			if v.Type().Elem().Kind() == reflect.Struct {
				v.Set(reflect.MakeSlice(v.Type(), 1, 1))
				checkSame(t, path+" (one zero element)", &full)
				each(v.Index(0), path+"[0]")
				v.Set(reflect.Zero(v.Type()))
				return
			}
			fallthrough
		default:
			saved := reflect.New(v.Type()).Elem()
			saved.Set(v)
			lf := filler{data: []byte{0x07, 0x07, 0x07, 0x07, 0x07}, strs: []string{"v"}}
			lf.fill(t, v)
			checkSame(t, path, &full)
			v.Set(saved)
			count++
		}
	}
	full = ecs.Event{}
	each(reflect.ValueOf(&full).Elem(), "Event")
	if count < len(want) {
		t.Fatalf("set %d leaves one at a time, want at least %d", count, len(want))
	}
}

func maps(a, b map[string]bool) bool { return len(diff(a, b)) == 0 && len(diff(b, a)) == 0 }

func diff(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func benchDocs(b *testing.B) []ecs.Event {
	docs := generatedDocs(b, 2000, 1)
	return docs[:min(len(docs), 500)]
}

func benchBytes(docs []ecs.Event) int64 {
	var n int
	for i := range docs {
		n += len(docs[i].AppendJSON(nil))
	}
	return int64(n / len(docs))
}

func BenchmarkAppendJSON(b *testing.B) {
	docs := benchDocs(b)
	b.SetBytes(benchBytes(docs))
	b.ReportAllocs()
	buf := make([]byte, 0, 8192)
	n := 0
	for b.Loop() {
		buf = docs[n%len(docs)].AppendJSON(buf[:0])
		n++
	}
}

func BenchmarkEncodingJSON(b *testing.B) {
	docs := benchDocs(b)
	b.SetBytes(benchBytes(docs))
	b.ReportAllocs()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	n := 0
	for b.Loop() {
		buf.Reset()
		if err := enc.Encode(&docs[n%len(docs)]); err != nil {
			b.Fatal(err)
		}
		n++
	}
}
