package entra

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf16"

	"github.com/sspr-exporter/sspr-exporter/internal/gen"
)

// readers gives the ways a test reads the same input: in memory and
// through readers that cut it into different chunks.
func readers(in string) map[string]func() *Scanner {
	return map[string]func() *Scanner{
		"memory":  func() *Scanner { return NewBytesScanner([]byte(in), 0) },
		"whole":   func() *Scanner { return NewScanner(strings.NewReader(in), 0) },
		"half":    func() *Scanner { return NewScanner(iotest.HalfReader(strings.NewReader(in)), 0) },
		"onebyte": func() *Scanner { return NewScanner(iotest.OneByteReader(strings.NewReader(in)), 0) },
	}
}

// outcome is one value or record as a test sees it.
type outcome struct {
	line int64
	data string
	err  error
}

// drain reads every value of sc, handing out each record (or failed
// value) as one outcome.
func drain(t *testing.T, sc *Scanner) []outcome {
	t.Helper()
	var out []outcome
	for {
		v, err := sc.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if v.Err != nil {
			out = append(out, outcome{v.Line, string(v.Data), v.Err})
			continue
		}
		_ = v.Records(func(r RawRecord) error {
			out = append(out, outcome{r.Line, string(r.Data), r.Err})
			return nil
		})
	}
}

// withMax sets the limit of a scanner made by readers.
func withMax(sc *Scanner, max int) *Scanner {
	sc.max = max
	return sc
}

// TestCutLineThenMoreThanMax cuts a body at every byte and follows the cut
// line with more than max_body_bytes of good bodies: the cut line alone is
// dead-lettered and every good body after it comes out.
func TestCutLineThenMoreThanMax(t *testing.T) {
	body := `{"records":[{"time":"2026-01-01T00:00:00Z","n":-1.5e3,"ok":true,"no":null,"arr":[1,[2,{"x":"y\"z"}]],"o":{"k":"v\u00e9"}},{"b":2}],"more":{"a":[]}}`
	const max, good = 512, 40
	var tail strings.Builder
	for i := range good {
		fmt.Fprintf(&tail, "{\"records\":[{\"n\":%d,\"pad\":\"%s\"}]}\n", i, strings.Repeat("p", 10))
	}
	if tail.Len() <= max {
		t.Fatalf("tail of %d bytes is not more than the limit", tail.Len())
	}
	for cut := 1; cut < len(body); cut++ {
		in := body[:cut] + "\n" + tail.String()
		for mode, mk := range readers(in) {
			got := drain(t, withMax(mk(), max))
			if len(got) != good+1 {
				t.Fatalf("cut %d (%q) %s: %d outcomes, want %d: %+v", cut, body[:cut], mode, len(got), good+1, got)
			}
			var se *SyntaxError
			if got[0].line != 1 || got[0].data != body[:cut] || !errors.As(got[0].err, &se) {
				t.Fatalf("cut %d %s: first outcome %+v, want the cut line as a syntax error", cut, mode, got[0])
			}
			for i, o := range got[1:] {
				want := fmt.Sprintf("{\"n\":%d,", i)
				if o.err != nil || o.line != int64(i+2) || !strings.HasPrefix(o.data, want) {
					t.Fatalf("cut %d %s: outcome %d = %+v, want record %s at line %d", cut, mode, i+1, o, want, i+2)
				}
			}
		}
	}
}

// TestCutLineThenManyBodies: a cut Event Hubs body followed by 14,000 good
// ones (more than the default limit) loses none of them.
func TestCutLineThenManyBodies(t *testing.T) {
	var buf bytes.Buffer
	st, err := gen.Write(&buf, gen.Options{Records: 14000, PerBody: 1, SSPRShare: 0.05, Seed: 7}, false)
	if err != nil {
		t.Fatal(err)
	}
	if buf.Len() <= DefaultMaxBodyBytes {
		t.Fatalf("%d bytes of bodies is not more than the limit", buf.Len())
	}
	// Cut between two members, as an upload cut short may be: the line
	// is then a valid start that later lines could continue.
	first, _, _ := bytes.Cut(buf.Bytes(), []byte{'\n'})
	cut := bytes.LastIndex(first[:len(first)/2], []byte(`",`)) + 2
	in := append(append(bytes.Clone(first[:cut]), '\n'), buf.Bytes()...)
	for _, mode := range []string{"memory", "whole"} {
		got := drain(t, readers(string(in))[mode]())
		fails, records := 0, 0
		for _, o := range got {
			if o.err != nil {
				fails++
			} else {
				records++
			}
		}
		if fails != 1 || records != st.Records {
			t.Errorf("%s: %d failures and %d records, want 1 and %d", mode, fails, records, st.Records)
		}
	}
}

// TestGeneratorPoisonReplay: the generator's cut bodies each become one
// dead letter; every record and SSPR event of the good bodies comes out.
func TestGeneratorPoisonReplay(t *testing.T) {
	var buf bytes.Buffer
	st, err := gen.Write(&buf, gen.Options{Records: 12000, PerBody: 100, SSPRShare: 0.05, Seed: 11, PoisonEvery: 7}, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.Poison == 0 || st.SSPR == 0 {
		t.Fatalf("stats %+v: no poison or no SSPR", st)
	}
	const max = 1 << 20 // several bodies: a cut one could swallow the next
	for _, mode := range []string{"memory", "half"} {
		got := drain(t, withMax(readers(buf.String())[mode](), max))
		fails, records, sspr := 0, 0, 0
		for _, o := range got {
			switch {
			case o.err != nil:
				fails++
			default:
				records++
				if strings.Contains(o.data, `"Self-service Password Management"`) {
					sspr++
				}
			}
		}
		if fails != st.Poison || records != st.Records || sspr != st.SSPR {
			t.Errorf("%s: %d failures, %d records, %d SSPR; generator wrote %d cut bodies, %d records, %d SSPR",
				mode, fails, records, sspr, st.Poison, st.Records, st.SSPR)
		}
	}
}

// TestMultiLineValues: pretty-printed values are still one value; a
// multi-line value that does not end within the limit gives up its first
// line only, and reading resumes on the line after it.
func TestMultiLineValues(t *testing.T) {
	pretty := "{\n  \"records\": [\n    {\"a\": 1},\n    {\n      \"b\": [\n        2\n      ]\n    }\n  ]\n}\n"
	for mode, mk := range readers(pretty + `{"c":3}`) {
		got := drain(t, mk())
		if len(got) != 3 || got[0].data != `{"a": 1}` || got[1].line != 4 || got[2].data != `{"c":3}` || got[0].err != nil || got[1].err != nil {
			t.Errorf("%s: %+v", mode, got)
		}
	}

	// A cut line, then a body that alone fits the limit but not with
	// the cut line before it.
	cut := `{"records":[{"a":[` + strings.Repeat(`"x",`, 50)
	big := `{"records":[{"big":"` + strings.Repeat("b", 700) + `"}]}`
	in := cut + "\n" + big + "\n{\"n\":1}\n"
	for mode, mk := range readers(in) {
		got := drain(t, withMax(mk(), 800))
		if len(got) != 3 || got[0].data != cut || got[0].err == nil || got[1].err != nil || got[1].line != 2 || got[2].data != `{"n":1}` {
			t.Errorf("cut then big, %s: %+v", mode, got)
		}
	}

	// A pretty value larger than the limit: its first line is given up,
	// and what follows is read again line by line; records on lines of
	// their own come out.
	var p strings.Builder
	p.WriteString("{\n  \"records\": [\n")
	for i := range 30 {
		fmt.Fprintf(&p, "    {\"n\": %d, \"pad\": \"%s\"},\n", i, strings.Repeat("q", 20))
	}
	p.WriteString("    {\"n\": 30}\n  ]\n}\n{\"after\":1}\n")
	for mode, mk := range readers(p.String()) {
		got := drain(t, withMax(mk(), 400))
		var se *SyntaxError
		if len(got) == 0 || got[0].data != "{" || !errors.As(got[0].err, &se) || !strings.Contains(se.Msg, "max_body_bytes") {
			t.Fatalf("big pretty, %s: first outcome %+v", mode, got)
		}
		if last := got[len(got)-1]; last.data != `{"after":1}` || last.err != nil {
			t.Errorf("big pretty, %s: last outcome %+v", mode, last)
		}
	}
}

// TestOversizedLines: a line longer than the limit, valid JSON or not,
// comes out as one truncated value with the size and digest of the whole
// line, and reading resumes on the next line.
func TestOversizedLines(t *testing.T) {
	const max = 1000
	long := strings.Repeat("x", 5000)
	for _, line := range []string{
		`{"records":[{"k":"` + long + `"}]}`,          // valid
		`{"records":[{"k":tru "` + long + `"}]}`,      // invalid early
		`{"records":[{"k":"` + long + `"}]]`,          // invalid at the end
		`{"records":[{"k":"` + long + `"` + "\x01\"}", // control character late
		`hello ` + long,  // not JSON at all
		`{"a":1,` + long, // broken structure
	} {
		for _, eol := range []string{"\n", "\r\n"} {
			in := line + eol + `{"after":1}` + eol
			for mode, mk := range readers(in) {
				sc := withMax(mk(), max)
				v, err := sc.Next()
				var tl *TooLargeError
				if err != nil || !errors.As(v.Err, &tl) {
					t.Fatalf("%.20q %s: err %v, v.Err %v, want a *TooLargeError", line, mode, err, v.Err)
				}
				if tl.Size != int64(len(line)) || tl.SHA256 != sha256.Sum256([]byte(line)) || v.Size != tl.Size || v.SHA256 != tl.SHA256 {
					t.Errorf("%.20q %q %s: size %d (want %d), digest matches %v", line, eol, mode, tl.Size, len(line), tl.SHA256 == sha256.Sum256([]byte(line)))
				}
				if len(v.Data) == 0 || len(v.Data) > max || !strings.HasPrefix(line, string(v.Data)) || v.Line != 1 {
					t.Errorf("%.20q %s: kept %d bytes at line %d, want a prefix of at most %d", line, mode, len(v.Data), v.Line, max)
				}
				v, err = sc.Next()
				if err != nil || v.Err != nil || string(v.Data) != `{"after":1}` || v.Line != 2 {
					t.Errorf("%.20q %s: after it %q line %d err %v %v", line, mode, v.Data, v.Line, err, v.Err)
				}
				if _, err := sc.Next(); err != io.EOF {
					t.Errorf("%.20q %s: more after the last line: %v", line, mode, err)
				}
			}
		}
	}
}

// TestFailuresDoNotRescanWithoutBound: lines that each open a value that
// never ends are given up one by one without scanning every later line
// again for each; past maxNesting of them, past the bound on rescans, the
// rest is given up in larger pieces. No line is lost.
func TestFailuresDoNotRescanWithoutBound(t *testing.T) {
	const n = 200000
	for _, open := range []string{"[", `{"a":[`} {
		in := strings.Repeat(open+"\n", n)
		got := drain(t, NewBytesScanner([]byte(in), 0))
		if len(got) < maxNesting {
			t.Fatalf("%q: %d outcomes, want at least %d", open, len(got), maxNesting)
		}
		var parts []string
		for i, o := range got {
			if o.err == nil || i < maxNesting && (o.data != open || o.line != int64(i+1)) {
				t.Fatalf("%q: outcome %d = %.40q line %d err %v", open, i, o.data, o.line, o.err)
			}
			parts = append(parts, o.data)
		}
		if strings.Join(parts, "\n") != strings.TrimSuffix(in, "\n") {
			t.Errorf("%q: the outcomes do not hold every line of the input", open)
		}
	}
}

// TestNestedBrokenValues: values nested in one another over many lines,
// each broken near its end, are not each scanned again from their second
// line: past maxRescans levels the lines up to the failure are one dead
// letter. Every line still ends in some outcome.
func TestNestedBrokenValues(t *testing.T) {
	const n = 5000
	in := strings.Repeat(`{"a":`+"\n", n) + "1\n" + strings.Repeat(`}"x"`+"\n", n)
	for mode, mk := range readers(in) {
		if mode == "onebyte" {
			continue
		}
		got := drain(t, mk())
		if len(got) != maxRescans+2 {
			t.Fatalf("%s: %d outcomes, want %d", mode, len(got), maxRescans+2)
		}
		var parts []string
		for i, o := range got {
			if o.err == nil {
				t.Fatalf("%s: outcome %d is not a failure: %+v", mode, i, o)
			}
			if i < maxRescans && (o.data != `{"a":` || o.line != int64(i+1)) {
				t.Fatalf("%s: outcome %d = %+v, want line %d alone", mode, i, o, i+1)
			}
			parts = append(parts, o.data)
		}
		if strings.Join(parts, "\n") != strings.TrimSuffix(in, "\n") {
			t.Errorf("%s: the outcomes do not hold every line of the input", mode)
		}
	}
}

func utf16Bytes(s string, bigEndian, bom bool) []byte {
	var out []byte
	u := utf16.Encode([]rune(s))
	if bom {
		u = append([]uint16{0xFEFF}, u...)
	}
	for _, c := range u {
		if bigEndian {
			out = append(out, byte(c>>8), byte(c))
		} else {
			out = append(out, byte(c), byte(c>>8))
		}
	}
	return out
}

// TestUnreadableInput: UTF-16 text, a gzip body and binary garbage are
// each one dead letter that says what the input is, however many lines
// they have; reading resumes at the next line that starts JSON text.
func TestUnreadableInput(t *testing.T) {
	var lines strings.Builder
	for i := range 200 {
		fmt.Fprintf(&lines, "{\"records\":[{\"n\":%d}]}\r\n", i)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Repeat(lines.String(), 20)))
	zw.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 1<<20)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	garbage[0] = 0x80 // not a byte JSON text can start with
	after := "\n{\"after\":1}\n"
	for _, tc := range []struct {
		name string
		in   []byte
		msg  string
	}{
		{"utf-16le bom", utf16Bytes(lines.String(), false, true), "input is UTF-16"},
		{"utf-16be bom", utf16Bytes(lines.String(), true, true), "input is UTF-16"},
		{"utf-16le", utf16Bytes(lines.String(), false, false), "input is UTF-16"},
		{"utf-16be", utf16Bytes(lines.String(), true, false), "input is UTF-16"},
		{"gzip", gz.Bytes(), "gzip-compressed"},
		{"binary", garbage, "not the start of a JSON value"},
		{"text", []byte("hello world\nsecond line of a log\n} stray\n"), "not the start of a JSON value"},
	} {
		for _, tail := range []string{"", after} {
			in := string(tc.in) + tail
			for mode, mk := range readers(in) {
				if mode == "onebyte" && len(in) > 1<<16 {
					continue
				}
				got := drain(t, mk())
				want := 1
				if tail != "" {
					want = 2
				}
				if len(got) != want || got[0].err == nil || !strings.Contains(got[0].err.Error(), tc.msg) {
					t.Fatalf("%s + %q, %s: %d outcomes, want %d, the first an error with %q; first: line %d err %v",
						tc.name, tail, mode, len(got), want, tc.msg, firstLine(got), firstErr(got))
				}
				if strings.Contains(tc.msg, "UTF-16") && !strings.Contains(got[0].err.Error(), "(convert it to UTF-8)") {
					t.Errorf("%s: %v does not say to convert", tc.name, got[0].err)
				}
				if tail != "" && (got[1].data != `{"after":1}` || got[1].err != nil) {
					t.Errorf("%s, %s: after the run: %+v", tc.name, mode, got[1])
				}
			}
		}
	}

	// A run larger than the limit is one truncated dead letter that
	// still says what the input is.
	big := utf16Bytes(strings.Repeat(lines.String(), 10), false, true)
	got := drain(t, withMax(NewBytesScanner(append(big, after...), 0), 4096))
	var tl *TooLargeError
	if len(got) != 2 || !errors.As(got[0].err, &tl) || !strings.Contains(tl.Detail, "UTF-16") || got[1].data != `{"after":1}` {
		t.Fatalf("big UTF-16: %d outcomes, first err %v", len(got), firstErr(got))
	}
	if tl.Size != int64(len(big)) || tl.SHA256 != sha256.Sum256(big) {
		t.Errorf("big UTF-16: size %d, want %d", tl.Size, len(big))
	}
}

func firstLine(o []outcome) int64 {
	if len(o) == 0 {
		return 0
	}
	return o[0].line
}

func firstErr(o []outcome) error {
	if len(o) == 0 {
		return nil
	}
	return o[0].err
}

// pendingReader stands for a file being followed: it hands out the chunks
// it is given, says ErrPending once when it has none, and then waits.
type pendingReader struct {
	chunks  chan string
	waiting chan struct{} // signalled when a read starts to wait
	cur     string
	told    bool
}

func (r *pendingReader) Read(p []byte) (int, error) {
	if r.cur == "" {
		var c string
		var ok bool
		select {
		case c, ok = <-r.chunks:
		default:
			if !r.told {
				r.told = true
				return 0, ErrPending
			}
			r.waiting <- struct{}{}
			c, ok = <-r.chunks
		}
		if !ok {
			return 0, io.EOF
		}
		r.cur, r.told = c, false
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// TestPendingInput: when a followed file has nothing more for now, a value
// left open is settled if what was read shows it cut (its last line is a
// complete value of its own, starting the line); otherwise the scanner
// waits, and a value being written is never split.
func TestPendingInput(t *testing.T) {
	type step struct {
		write string
		want  []string // outcomes (data, "!" prefix for failures) once the scanner waits
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"cut line then one good line", []step{
			{"{\"records\":[{\"a\":[1,\n{\"records\":[{\"n\":1}]}\n", []string{"!{\"records\":[{\"a\":[1,", `{"n":1}`}},
		}},
		{"cut line, good line later", []step{
			{"{\"records\":[{\"a\":[1,\n", nil},
			{"{\"n\":1}\n", []string{"!{\"records\":[{\"a\":[1,", `{"n":1}`}},
			{"{\"n\":2}\n", []string{`{"n":2}`}},
		}},
		{"cut line, good line written in pieces", []step{
			{"{\"records\":[{\"a\":[1,\n{\"n\":", nil},
			{"1}", nil},
			{"\n", []string{"!{\"records\":[{\"a\":[1,", `{"n":1}`}},
		}},
		{"pretty value written slowly", []step{
			{"{\n", nil},
			{"  \"records\": [\n", nil},
			{"    {\"n\": 1}\n", nil},
			{"  ]\n", nil},
			{"}\n", []string{`{"n": 1}`}},
		}},
		{"array of one record per line", []step{
			{"[\n{\"n\":1},\n", nil},
			{"{\"n\":2},\n", nil},
			{"{\"n\":3}", nil},
			{"\n]\n", []string{`{"n":1}`, `{"n":2}`, `{"n":3}`}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &pendingReader{chunks: make(chan string), waiting: make(chan struct{})}
			out := make(chan outcome, 100)
			done := make(chan error, 1)
			go func() {
				sc := NewScanner(r, 0)
				for {
					v, err := sc.Next()
					if err != nil {
						done <- err
						return
					}
					if v.Err != nil {
						out <- outcome{v.Line, "!" + string(v.Data), v.Err}
						continue
					}
					_ = v.Records(func(rec RawRecord) error {
						out <- outcome{rec.Line, string(rec.Data), rec.Err}
						return nil
					})
				}
			}()
			wait := func() {
				t.Helper()
				select {
				case <-r.waiting:
				case err := <-done:
					t.Fatalf("scanner stopped: %v", err)
				}
			}
			wait()
			for i, st := range tc.steps {
				r.chunks <- st.write
				wait() // everything the scanner could settle is out
				var got []string
				for len(out) > 0 {
					got = append(got, (<-out).data)
				}
				if fmt.Sprint(got) != fmt.Sprint(st.want) {
					t.Fatalf("after step %d (%q): %q, want %q", i, st.write, got, st.want)
				}
			}
			close(r.chunks)
			if err := <-done; err != io.EOF {
				t.Fatalf("end: %v", err)
			}
			if len(out) != 0 {
				t.Fatalf("left at the end: %+v", <-out)
			}
		})
	}
}
