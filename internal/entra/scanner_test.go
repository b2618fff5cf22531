package entra

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// item is what a test sees of one record or failure.
type item struct {
	line int64
	data string
	err  string
}

func collect(t *testing.T, r io.Reader, max int) []item {
	t.Helper()
	var out []item
	for _, o := range drain(t, NewScanner(r, max)) {
		out = append(out, item{o.line, o.data, kindOf(o.err)})
	}
	return out
}

func TestScannerShapes(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []item
	}{
		{"envelope", `{"records":[{"a":1},{"b":2}]}`, []item{{1, `{"a":1}`, ""}, {1, `{"b":2}`, ""}}},
		{"envelope other keys", `{"x":[{"n":0}],"records":[{"a":"]"}],"value":[{"z":1}]}`, []item{{1, `{"a":"]"}`, ""}, {1, `{"z":1}`, ""}}},
		{"graph page", "{\"@odata.context\":\"x\",\n\"value\":[\n{\"id\":\"1\"},\n{\"id\":\"2\"}],\"@odata.nextLink\":\"n\"}", []item{{3, `{"id":"1"}`, ""}, {4, `{"id":"2"}`, ""}}},
		{"bare lines crlf bom", "\xEF\xBB\xBF{\"a\":1}\r\n{\"b\":2}\r\n", []item{{1, `{"a":1}`, ""}, {2, `{"b":2}`, ""}}},
		{"array", `[{"a":1}, {"records":[{"c":3}]}, 5]`, []item{{1, `{"a":1}`, ""}, {1, `{"c":3}`, ""}, {1, `5`, "not-object"}}},
		{"envelope non object", `{"records":[{"a":1},"x",null]}`, []item{{1, `{"a":1}`, ""}, {1, `"x"`, "not-object"}, {1, `null`, "not-object"}}},
		{"pretty", "{\n  \"a\": [1, 2.5e-3, true, false, null],\n  \"b\": \"q\\\"\\u00e9\"\n}\n{\"c\":1}", []item{{1, "{\n  \"a\": [1, 2.5e-3, true, false, null],\n  \"b\": \"q\\\"\\u00e9\"\n}", ""}, {5, `{"c":1}`, ""}}},
		{"truncated then good", "{\"records\":[{\"a\":1\n{\"records\":[{\"b\":2}]}\n", []item{{1, `{"records":[{"a":1`, "syntax"}, {2, `{"b":2}`, ""}}},
		{"garbage line", "hello world\n{\"b\":2}", []item{{1, "hello world", "syntax"}, {2, `{"b":2}`, ""}}},
		{"bad literal", "{\"a\":tru}\n{\"b\":2}", []item{{1, `{"a":tru}`, "syntax"}, {2, `{"b":2}`, ""}}},
		{"missing comma", "{\"a\":1 \"b\":2}\n{\"b\":2}", []item{{1, `{"a":1 "b":2}`, "syntax"}, {2, `{"b":2}`, ""}}},
		{"mismatch", "{\"a\":[1}\n[2]", []item{{1, `{"a":[1}`, "syntax"}, {2, `2`, "not-object"}}},
		{"eof mid value", "{\"a\":1}\n{\"b\":", []item{{1, `{"a":1}`, ""}, {2, `{"b":`, "syntax"}}},
		{"broken pretty resumes next line", "{\n\"a\": x\n}\n{\"ok\":1}", []item{{1, "{", "syntax"}, {2, `"a"`, "not-object"}, {2, ": x\n}", "syntax"}, {4, `{"ok":1}`, ""}}},
		{"scalar top", `"str" 12`, []item{{1, `"str"`, "not-object"}, {1, `12`, "not-object"}}},
		{"control char", "{\"a\":\"x\ty\"}\n{\"b\":1}", []item{{1, "{\"a\":\"x\ty\"}", "syntax"}, {2, `{"b":1}`, ""}}},
		{"empty", " \n\r\n", nil},
		{"records not an array", "{\"records\":{\"a\":1}}\n{\"records\":\"x\"}\n{\"value\":null,\"id\":\"1\"}\n{\"b\":2}", []item{{1, `{"records":{"a":1}}`, "bad-envelope"}, {2, `{"records":"x"}`, "bad-envelope"}, {3, `{"value":null,"id":"1"}`, "bad-envelope"}, {4, `{"b":2}`, ""}}},
		{"records not an array inside an array", `[{"records":{"a":1}},{"a":{"records":5}}]`, []item{{1, `{"records":{"a":1}}`, "bad-envelope"}, {1, `{"a":{"records":5}}`, ""}}},
		{"envelope then odd value member", `{"records":[{"a":1}],"value":3}`, []item{{1, `{"a":1}`, ""}, {1, `3`, "bad-envelope"}}},
	}
	for _, tt := range tests {
		for _, mode := range []string{"whole", "onebyte"} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tt.in)
				if mode == "onebyte" {
					r = iotest.OneByteReader(r)
				}
				got := collect(t, r, 0)
				if len(got) != len(tt.want) {
					t.Fatalf("got %d items %+v, want %d %+v", len(got), got, len(tt.want), tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Errorf("item %d = %+v, want %+v", i, got[i], tt.want[i])
					}
				}
			})
		}
	}
}

func TestScannerTooLarge(t *testing.T) {
	big := `{"records":[` + strings.Repeat(`{"k":"`+strings.Repeat("x", 100)+`"},`, 100) + `{"k":1}]}`
	in := big + "\n{\"after\":1}\n"
	for _, r := range []io.Reader{strings.NewReader(in), iotest.HalfReader(strings.NewReader(in))} {
		sc := NewScanner(r, 1000)
		v, err := sc.Next()
		if err != nil || !errors.Is(v.Err, ErrTooLarge) {
			t.Fatalf("first value: err=%v v.Err=%v", err, v.Err)
		}
		if v.Size != int64(len(big)) || v.SHA256 != sha256.Sum256([]byte(big)) {
			t.Errorf("size %d sha mismatch=%v, want %d", v.Size, v.SHA256 != sha256.Sum256([]byte(big)), len(big))
		}
		if !bytes.HasPrefix([]byte(big), v.Data) || len(v.Data) == 0 {
			t.Errorf("data is not a prefix of the value")
		}
		v, err = sc.Next()
		if err != nil || v.Err != nil || string(v.Data) != `{"after":1}` || v.Line != 2 {
			t.Fatalf("after: %q line %d err %v %v", v.Data, v.Line, err, v.Err)
		}
	}
}

// TestSyntaxErrorOffsetAtEnd: input that ends inside a value is reported
// at the same stream offset however the input was read: a cut-short escape
// or literal where it starts, a plain unterminated string at the end.
func TestSyntaxErrorOffsetAtEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"{\"b\":1}\n{\"a\":\"x\\", 15},
		{"{\"b\":1}\n{\"a\":\"x\\u00", 15},
		{"{\"b\":1}\n{\"a\":\"xy", 16},
		{"{\"b\":1}\n{\"a\":tr", 13},
	} {
		for _, mode := range []string{"whole", "onebyte"} {
			var r io.Reader = strings.NewReader(tc.in)
			if mode == "onebyte" {
				r = iotest.OneByteReader(r)
			}
			sc := NewScanner(r, 0)
			var se *SyntaxError
			for {
				v, err := sc.Next()
				if err != nil {
					break
				}
				if errors.As(v.Err, &se) {
					break
				}
			}
			if se == nil {
				t.Errorf("%q/%s: no syntax error", tc.in, mode)
				continue
			}
			if se.Offset != tc.want || se.Line != 2 {
				t.Errorf("%q/%s: error at offset %d line %d (%v), want offset %d line 2", tc.in, mode, se.Offset, se.Line, se, tc.want)
			}
		}
	}
}
