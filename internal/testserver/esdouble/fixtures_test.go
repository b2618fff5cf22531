package esdouble

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
)

// fixtureValue returns the "value" of a specification example file: a
// literal block (|-), a double- or single-quoted flow scalar, or a block
// mapping (returned re-encoded as JSON). It understands just the YAML those
// files use, which keeps the module free of a YAML dependency.
func fixtureValue(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "value:") {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("%s: no value", path)
	}
	head := strings.TrimSpace(strings.TrimPrefix(lines[start], "value:"))
	rest := lines[start+1:]
	switch {
	case head == "|-":
		var b strings.Builder
		for _, l := range rest {
			b.WriteString(strings.TrimPrefix(l, "  "))
			b.WriteByte('\n')
		}
		return []byte(strings.TrimSpace(b.String()))
	case head == "" && len(rest) > 0 && strings.HasPrefix(strings.TrimSpace(rest[0]), `"`):
		return []byte(foldDoubleQuoted(t, rest))
	case head == "" && len(rest) > 0 && strings.HasPrefix(strings.TrimSpace(rest[0]), `'`):
		return []byte(foldSingleQuoted(rest))
	case strings.HasPrefix(head, `'`):
		return []byte(foldSingleQuoted(append([]string{head}, rest...)))
	case strings.HasPrefix(head, `"`):
		return []byte(foldDoubleQuoted(t, append([]string{head}, rest...)))
	case head == "":
		m, _ := parseBlockMap(rest, 2)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Fatalf("%s: unsupported value form %q", path, head)
	return nil
}

func foldDoubleQuoted(t *testing.T, lines []string) string {
	var b strings.Builder
	for i, l := range lines {
		if strings.TrimSpace(l) == "" {
			if i == len(lines)-1 || b.Len() == 0 {
				continue
			}
			b.WriteString(`\n`)
			continue
		}
		l = strings.TrimLeft(l, " \t")
		if i > 0 && b.Len() > 0 {
			s := b.String()
			if trailingEscapes(s)%2 == 1 {
				// An escaped line break joins the lines directly.
				b.Reset()
				b.WriteString(s[:len(s)-1])
			} else {
				b.Reset()
				b.WriteString(strings.TrimRight(s, " \t"))
				b.WriteByte(' ')
			}
		}
		b.WriteString(l)
	}
	s := strings.TrimSpace(b.String())
	s = strings.TrimPrefix(strings.TrimSuffix(s, `"`), `"`)
	// YAML escapes that JSON lacks.
	s = strings.ReplaceAll(s, `\ `, " ")
	var out string
	if err := json.Unmarshal([]byte(`"`+s+`"`), &out); err != nil {
		t.Fatalf("unescape fixture: %v", err)
	}
	return out
}

func trailingEscapes(s string) int {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n
}

func foldSingleQuoted(lines []string) string {
	var b strings.Builder
	pendingBreaks := 0
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" {
			pendingBreaks++
			continue
		}
		if b.Len() > 0 {
			if pendingBreaks > 0 {
				b.WriteString(strings.Repeat("\n", pendingBreaks))
			} else {
				b.WriteByte(' ')
			}
		}
		pendingBreaks = 0
		b.WriteString(l)
	}
	s := strings.TrimSuffix(strings.TrimPrefix(b.String(), "'"), "'")
	return strings.ReplaceAll(s, "''", "'")
}

// parseBlockMap reads "key: value" lines indented by indent, nesting on
// deeper indentation; scalar values stay strings.
func parseBlockMap(lines []string, indent int) (map[string]any, int) {
	m := map[string]any{}
	i := 0
	for i < len(lines) {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#") {
			i++
			continue
		}
		ind := len(l) - len(strings.TrimLeft(l, " "))
		if ind < indent {
			break
		}
		k, v, _ := strings.Cut(strings.TrimSpace(l), ":")
		v = strings.TrimSpace(v)
		i++
		if v == "" {
			sub, n := parseBlockMap(lines[i:], ind+2)
			m[k] = sub
			i += n
			continue
		}
		m[k] = strings.Trim(v, `'"`)
	}
	return m, i
}

// keySet lists the key paths of a JSON value; array elements share the
// path with a [] suffix.
func keySet(t *testing.T, b []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	set := map[string]bool{}
	walkKeys("", v, set)
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func walkKeys(prefix string, v any, set map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			set[p] = true
			walkKeys(p, e, set)
		}
	case []any:
		for _, e := range x {
			walkKeys(prefix+"[]", e, set)
		}
	}
}

func sub(t *testing.T, b []byte, path ...any) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("no key %q in %s", k, b)
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || len(a) <= k {
				t.Fatalf("no element %d in %s", k, b)
			}
			v = a[k]
		}
	}
	out, _ := json.Marshal(v)
	return out
}

func sameKeys(t *testing.T, what string, fixture, got []byte) {
	t.Helper()
	want, have := keySet(t, fixture), keySet(t, got)
	if fmt.Sprint(want) != fmt.Sprint(have) {
		t.Errorf("%s: key sets differ\nfixture: %v\ndouble:  %v\ndouble's answer: %s", what, want, have, got)
	}
}

func TestFixtureValueParses(t *testing.T) {
	for _, p := range []string{
		"testdata/spec-examples/_global/bulk/examples/response/BulkResponseExample1.yaml",
		"testdata/spec-examples/_global/bulk/examples/response/BulkResponseExample2.yaml",
		"testdata/spec-examples/_global/count/examples/200_response/CountResponseExample1.yaml",
		"testdata/spec-examples/_global/search/examples/200_response/SearchResponseExample1.yaml",
		"testdata/spec-examples/_global/info/examples/response/RootNodeInfoResponseExample1.yaml",
		"testdata/spec-examples/ilm/get_lifecycle/examples/response/GetLifecycleResponseExample1.yaml",
		"testdata/spec-examples/indices/get_index_template/examples/200_response/GetIndexTemplateResponseExample1.yaml",
	} {
		b := fixtureValue(t, p)
		if !json.Valid(b) {
			t.Errorf("%s: extracted value is not JSON: %s", p, b)
		}
	}
	got := string(fixtureValue(t, "testdata/spec-examples/_global/info/examples/response/RootNodeInfoResponseExample1.yaml"))
	if !strings.Contains(got, `"tagline":"You Know, for Search"`) || !strings.Contains(got, `"number":"9.1.0"`) {
		t.Errorf("info fixture parsed wrongly: %s", got)
	}
	bulk := fixtureValue(t, "testdata/spec-examples/_global/bulk/examples/request/BulkRequestExample1.yaml")
	if n := strings.Count(string(bulk), "\n"); n != 6 {
		t.Errorf("bulk request fixture: %d line breaks, want 6: %q", n, bulk)
	}
}
