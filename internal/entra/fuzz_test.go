package entra

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
	"unsafe"

	"github.com/sspr-exporter/sspr-exporter/internal/testdata"
)

// Fuzz briefly with, for example:
//
//	go test -run='^$' -fuzz=FuzzScanner -fuzztime=20s ./internal/entra
//	go test -run='^$' -fuzz=FuzzRecord -fuzztime=20s ./internal/entra

// addSeeds adds every file of the bundled test data and, when present, of
// the shared corpus, plus the records inside them for record-level targets.
func addSeeds(f *testing.F, records bool) {
	f.Helper()
	var dirs []string
	root := testdata.Project(f)
	for _, sub := range []string{"entra", "sspr", "sample", "shapes"} {
		dirs = append(dirs, filepath.Join(root, sub))
	}
	if shared, ok := testdata.SharedDir(); ok {
		dirs = append(dirs, filepath.Join(shared, "entra"), filepath.Join(shared, "sspr"))
	}
	n := 0
	for _, dir := range dirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			f.Fatalf("seeds: %v", err)
		}
		for _, e := range ents {
			if e.IsDir() || filepath.Ext(e.Name()) == ".md" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			n++
			if !records {
				f.Add(b)
				continue
			}
			sc := NewBytesScanner(b, 0)
			for {
				v, err := sc.Next()
				if err != nil {
					break
				}
				_ = v.Records(func(r RawRecord) error {
					f.Add(bytes.Clone(r.Data))
					return nil
				})
			}
		}
	}
	if n == 0 {
		f.Fatal("no seed files")
	}
}

// within reports whether sub lies inside b's memory.
func within(sub, b []byte) bool {
	if len(sub) == 0 {
		return true
	}
	if len(b) == 0 {
		return false
	}
	s := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return s >= lo && s+uintptr(len(sub)) <= lo+uintptr(len(b))
}

// scanned is what a test keeps of one value.
type scanned struct {
	data    string
	line    int64
	errKind string
	records []string
}

// scanChecked scans all of in (through r when not nil) and checks the
// invariants of every value and record.
func scanChecked(t *testing.T, in []byte, r io.Reader, max int) []scanned {
	t.Helper()
	var sc *Scanner
	if r == nil {
		sc = NewBytesScanner(in, max)
	} else {
		sc = NewScanner(r, max)
	}
	var out []scanned
	lines := int64(bytes.Count(in, []byte{'\n'})) + 1
	for i := 0; ; i++ {
		// Every value consumes at least one byte: more values than bytes
		// means the scanner stopped making progress.
		if i > len(in)+1 {
			t.Fatalf("scanner produced more values than input bytes: no progress")
		}
		v, err := sc.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next on in-memory input: %v", err)
		}
		if v.Line < 1 || v.Line > lines {
			t.Fatalf("value line %d outside 1..%d", v.Line, lines)
		}
		if r == nil && v.Err == nil && !within(v.Data, in) {
			t.Fatalf("value is not a sub-slice of the input")
		}
		s := scanned{data: string(v.Data), line: v.Line, errKind: kindOf(v.Err)}
		if v.Err == nil {
			if !balanced(v.Data) {
				t.Fatalf("scanner accepted unbalanced JSON %q", v.Data)
			}
			if v.Size != int64(len(v.Data)) {
				t.Fatalf("size %d for %d bytes", v.Size, len(v.Data))
			}
		} else if len(v.Data) > len(in) {
			t.Fatalf("failed value holds %d bytes of a %d-byte input", len(v.Data), len(in))
		}
		vlines := v.Line + int64(bytes.Count(v.Data, []byte{'\n'}))
		_ = v.Records(func(rec RawRecord) error {
			if !within(rec.Data, v.Data) {
				t.Fatalf("record %q is not a sub-slice of its value", rec.Data)
			}
			if !balanced(rec.Data) {
				t.Fatalf("record %q of a valid value is not balanced JSON", rec.Data)
			}
			switch {
			case errors.Is(rec.Err, ErrBadEnvelope):
			case errors.Is(rec.Err, ErrTooDeep), errors.Is(rec.Err, ErrNoRecords):
				// Both mark a nested array or envelope, never a scalar.
				if rec.Data[0] != '{' && rec.Data[0] != '[' {
					t.Fatalf("record %q: err %v", rec.Data, rec.Err)
				}
			case (rec.Err == nil) != (rec.Data[0] == '{'):
				t.Fatalf("record %q: err %v", rec.Data, rec.Err)
			case rec.Err != nil && !errors.Is(rec.Err, ErrNotObject):
				t.Fatalf("record error %v", rec.Err)
			}
			if rec.Line < v.Line || rec.Line > vlines {
				t.Fatalf("record line %d outside its value's %d..%d", rec.Line, v.Line, vlines)
			}
			s.records = append(s.records, string(rec.Data))
			return nil
		})
		if v.Err != nil && s.records != nil {
			t.Fatalf("a failed value yielded records")
		}
		if v.Err == nil && len(s.records) == 0 && v.kind != '[' && !v.envelope {
			t.Fatalf("a valid non-envelope value yielded no record: %q", v.Data)
		}
		out = append(out, s)
	}
}

// balanced reports whether b is one JSON value as far as structure goes:
// terminated strings with valid escapes and no control characters, and
// matching brackets.
func balanced(b []byte) bool {
	b = bytes.Trim(b, " \t\r\n")
	var stack []byte
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			for i++; ; i++ {
				if i >= len(b) || b[i] < 0x20 {
					return false
				}
				if b[i] == '\\' {
					i++
					continue
				}
				if b[i] == '"' {
					break
				}
			}
		case '{', '[':
			stack = append(stack, c)
		case '}', ']':
			if len(stack) == 0 || (c == '}') != (stack[len(stack)-1] == '{') {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0
}

func FuzzScanner(f *testing.F) {
	addSeeds(f, false)
	for _, s := range []string{
		`{"records":[{"a":1},{"b":2}]}`, `[{"a":1}, {"records":[{"c":3}]}, 5]`, `"str" 12`,
		"\xEF\xBB\xBF{\"a\":1}\r\n{\"b\":2}\r\n", "{\"a\":\n", `{"value":[{"x":"\u00e9\""}]}`,
		`{"records":{"a":1}}`, `[[{"records":[1]}]]`, "\xEF\xBB", `-0.0e+1`, `{"a":[1}`,
		"{\"records\":[{\"a\":[1,\n{\"records\":[{\"n\":1}]}\n{\"n\":2}\n", "{\"a\":1\n\n{\"b\":2}",
		`{"Records":[{"a":1}],"r\u0065cords":[{"records":[{"b":2}]}],"value":3}`, "[\n[\n{\n", "\xFF\xFE{\x00}\x00\n\x00{}",
		"\x1F\x8B\x08\n{}\n", "} junk\n\"x\": 1\n[1]", `[{"records":[]}, []]`, `{"records":[{"value":[]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got := scanChecked(t, in, nil, 0)

		// Verdict against encoding/json on the whole input.
		if json.Valid(in) {
			if len(got) != 1 || got[0].errKind != "" || got[0].data != string(bytes.Trim(in, " \t\r\n")) {
				t.Fatalf("json.Valid accepts the input as one value; scanner gave %+v", got)
			}
		} else if len(got) == 1 && got[0].errKind == "" && bytes.IndexByte(in, 0xEF) < 0 && !balanced(in) {
			// Below the top level only structure is checked (records that
			// may be SSPR events are parsed fully later), so an accepted
			// value json.Valid refuses must still be balanced. (0xEF is
			// excluded: the scanner skips byte-order marks.)
			t.Fatalf("scanner accepted %q as one value, but it is not balanced", in)
		}

		// A streamed input gives the same values however the reads fall.
		if len(in) <= 4096 {
			for name, r := range map[string]io.Reader{
				"onebyte": iotest.OneByteReader(bytes.NewReader(in)),
				"half":    iotest.HalfReader(bytes.NewReader(in)),
			} {
				streamed := scanChecked(t, in, r, 0)
				if len(streamed) != len(got) {
					t.Fatalf("%s reader: %d values, in-memory %d\nstream %+v\nmemory %+v", name, len(streamed), len(got), streamed, got)
				}
				for i := range got {
					a, b := got[i], streamed[i]
					if a.data != b.data || a.line != b.line || a.errKind != b.errKind || len(a.records) != len(b.records) {
						t.Fatalf("%s reader: value %d differs\nstream %+v\nmemory %+v", name, i, b, a)
					}
				}
			}
		}

		// A small limit turns large values into ErrTooLarge and nothing else.
		small := scanChecked(t, in, nil, 64)
		for _, s := range small {
			if s.errKind == "" && len(s.data) > 64 {
				t.Fatalf("value of %d bytes passed a 64-byte limit", len(s.data))
			}
		}
	})
}

func FuzzRecord(f *testing.F) {
	addSeeds(f, true)
	for _, s := range []string{
		`{"properties":"{\"activityDisplayName\":\"x\"}"}`, `{"properties":{"result":0,"additionalDetails":"None"}}`,
		`{"activityDisplayName":"a","loggedByService":"b","targetResource":[{"@odata.type":"#microsoft.graph.targetResourceUser"}]}`,
		`{"properties":{"initiatedBy":{},"additionalDetails":{"k":1}}}`, `{"Level":4,"LEVEL":"x","properties":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var rec Record
		err := json.Unmarshal(in, &rec)
		rec.Finish()
		e := rec.Entry()
		if e == nil {
			t.Fatal("Entry() is nil")
		}
		if rec.IsGraph() && rec.Properties != nil {
			t.Fatal("a record with properties is taken for a Graph directoryAudit")
		}
		if err == nil && rec.Properties != nil && e != rec.Properties {
			t.Fatal("Entry() is not the properties object")
		}
		for _, ts := range [][]TargetResource{e.TargetResources, e.TargetResource} {
			for i := range ts {
				_ = ts[i].IsUser()
			}
		}
		_ = e.AdditionalDetails.Get("User-Agent")

		// Text of a JSON string is the string's value.
		var s string
		if json.Unmarshal(in, &s) == nil && utf8.Valid(in) {
			var tx Text
			if err := tx.UnmarshalJSON(bytes.TrimSpace(in)); err != nil {
				t.Fatalf("Text refused a JSON string: %v", err)
			}
			if string(tx) != s {
				t.Fatalf("Text %q, encoding/json %q", tx, s)
			}
		}
		// additionalDetails given as a plain string: "None" and blanks
		// carry nothing, anything else is kept as one entry.
		var kv KeyValues
		if len(s) > 0 || bytes.HasPrefix(bytes.TrimSpace(in), []byte(`"`)) {
			if json.Valid(in) && kv.UnmarshalJSON(in) == nil {
				trimmed := strings.TrimSpace(s)
				empty := trimmed == "" || strings.EqualFold(trimmed, "none")
				if empty && len(kv) != 0 || !empty && (len(kv) != 1 || kv[0].Value != trimmed) {
					t.Fatalf("KeyValues from string %q: %+v", s, kv)
				}
			}
		}
	})
}
