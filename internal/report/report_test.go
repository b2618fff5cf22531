package report_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"github.com/sspr-exporter/sspr-exporter/internal/eventstore"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore/storetest"
	"github.com/sspr-exporter/sspr-exporter/internal/report"
)

var update = flag.Bool("update", false, "rewrite the golden reports")

// now is the generation time of every golden report.
var now = time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)

// period covers the whole corpus.
var period = eventstore.Query{From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}

// corpusFiles writes the corpus as NDJSON to a fixed name in a temporary
// directory and returns a reader of it and the directory.
func corpusFiles(t *testing.T) (eventstore.Reader, string) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "corpus.ndjson")
	storetest.WriteNDJSON(t, p, storetest.Corpus(t))
	r, err := eventstore.NewFiles(p)
	if err != nil {
		t.Fatal(err)
	}
	return r, dir
}

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/report -run TestGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (diff it with -update and git diff):\n%s", name, firstDiff(string(want), string(got)))
	}
}

func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + itoa(i+1) + ":\n want " + w + "\n got  " + g
		}
	}
	return ""
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestGolden produces every report in every format from the corpus and
// compares each with its golden file; XLSX by reading its cells back.
func TestGolden(t *testing.T) {
	r, dir := corpusFiles(t)
	for _, name := range report.Names() {
		for _, format := range report.Formats {
			t.Run(name+"/"+format, func(t *testing.T) {
				var buf bytes.Buffer
				m, err := report.Generate(context.Background(), r, report.Spec{Name: name, Query: period, Format: format}, &buf, now)
				if err != nil {
					t.Fatal(err)
				}
				if m.Rows == 0 {
					t.Errorf("no rows")
				}
				got := bytes.ReplaceAll(buf.Bytes(), []byte(dir), []byte("$DIR"))
				if format == "xlsx" {
					got = xlsxCells(t, buf.Bytes())
					got = bytes.ReplaceAll(got, []byte(dir), []byte("$DIR"))
					format = "xlsx.json"
				}
				golden(t, name+"."+format, got)
			})
		}
	}
}

// xlsxCells reads every sheet of a workbook back as JSON.
func xlsxCells(t *testing.T, b []byte) []byte {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sheets := map[string][][]string{}
	for _, s := range f.GetSheetList() {
		rows, err := f.GetRows(s)
		if err != nil {
			t.Fatal(err)
		}
		sheets[s] = rows
	}
	out, _ := json.MarshalIndent(sheets, "", " ")
	return append(out, '\n')
}

// TestCSVIsSafeAndRFC4180 checks that the CSV parses back under RFC 4180
// and that no cell starts a formula.
func TestCSVIsSafeAndRFC4180(t *testing.T) {
	r, _ := corpusFiles(t)
	for _, name := range report.Names() {
		var buf bytes.Buffer
		if _, err := report.Generate(context.Background(), r, report.Spec{Name: name, Query: period, Format: "csv"}, &buf, now); err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(buf.Bytes(), []byte("\r\n")) {
			t.Errorf("%s: lines do not end in CRLF", name)
		}
		rows, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, row := range rows {
			for _, c := range row {
				if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
					t.Errorf("%s: cell %q starts a formula", name, c)
				}
			}
		}
	}
	cases := map[string]string{"=1+1": "'=1+1", "+x": "'+x", "-2": "'-2", "@SUM(A1)": "'@SUM(A1)", "\tx": "'\tx", "\rx": "'\rx", "a=b": "a=b", "": ""}
	for in, want := range cases {
		if got := report.SafeCell(in); got != want {
			t.Errorf("SafeCell(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTableFitsTerminal checks that no line of a table report is wider
// than report.TableWidth.
func TestTableFitsTerminal(t *testing.T) {
	r, _ := corpusFiles(t)
	for _, name := range report.Names() {
		var buf bytes.Buffer
		if _, err := report.Generate(context.Background(), r, report.Spec{Name: name, Query: period, Format: "table"}, &buf, now); err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(buf.String(), "\n") {
			if n := utf8.RuneCountInString(line); n > report.TableWidth {
				t.Errorf("%s line %d: %d characters", name, i+1, n)
			}
		}
	}
}
