package report

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// header is what a format writes before the rows.
type header struct {
	manifest *Manifest
	columns  []Column
	title    string
}

// writer writes one report in one format, a row at a time.
type writer interface {
	begin(h header) error
	row(r *Row) error
	end(rows int) error
}

func newWriter(format string, w io.Writer) writer {
	switch format {
	case "csv":
		return &csvWriter{w: csv.NewWriter(w)}
	case "json":
		return &jsonWriter{w: bufio.NewWriter(w)}
	case "html":
		return newHTMLWriter(w)
	case "xlsx":
		return &xlsxWriter{out: w}
	}
	return &tableWriter{w: bufio.NewWriter(w)}
}

// tableWriter writes fixed-width columns that fit a terminal, cutting a
// longer value with an ellipsis, so that rows stream out as they come.
type tableWriter struct {
	w    *bufio.Writer
	cols []Column
}

func (t *tableWriter) begin(h header) error {
	t.cols = h.columns
	names := make([]string, len(h.columns))
	for i, c := range h.columns {
		names[i] = strings.ToUpper(c.Name)
	}
	t.line(names)
	return nil
}

// TableWidth is the most characters a line of the table format has.
const TableWidth = 160

func (t *tableWriter) row(r *Row) error {
	t.line(r.Cells)
	if t.w.Buffered() > 32<<10 {
		return t.w.Flush()
	}
	return nil
}

func (t *tableWriter) line(cells []string) {
	pad := 0
	for i, c := range cells {
		w := t.cols[i].Width
		if w == 0 {
			continue
		}
		t.w.WriteString(strings.Repeat(" ", pad))
		s := fit(c, w)
		t.w.WriteString(s)
		pad = w - utf8.RuneCountInString(s) + 2
	}
	t.w.WriteByte('\n')
}

func (t *tableWriter) end(rows int) error {
	fmt.Fprintf(t.w, "(%d rows)\n", rows)
	return t.w.Flush()
}

// fit cuts s to w characters, the last an ellipsis when cut; control
// characters become spaces so that a value cannot break the table.
func fit(s string, w int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) <= w {
		return s
	}
	rs := []rune(s)
	return string(rs[:w-1]) + "…"
}

// csvWriter writes RFC 4180 CSV with a header line. A cell that a
// spreadsheet would take for a formula (starting with =, +, -, @, a tab or
// a carriage return) gets a leading apostrophe.
type csvWriter struct{ w *csv.Writer }

func (c *csvWriter) begin(h header) error {
	c.w.UseCRLF = true
	names := make([]string, len(h.columns))
	for i, col := range h.columns {
		names[i] = col.Name
	}
	return c.w.Write(names)
}

func (c *csvWriter) row(r *Row) error {
	cells := make([]string, len(r.Cells))
	for i, s := range r.Cells {
		cells[i] = SafeCell(s)
	}
	return c.w.Write(cells)
}

func (c *csvWriter) end(int) error {
	c.w.Flush()
	return c.w.Error()
}

// SafeCell is s as a spreadsheet shows it as text: with a leading
// apostrophe when it starts with a character that begins a formula.
func SafeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// jsonWriter writes one object: the report, its query and period, the
// columns and the rows (each an object keyed by column), and the count.
type jsonWriter struct {
	w    *bufio.Writer
	cols []Column
	n    int
}

func (j *jsonWriter) begin(h header) error {
	j.cols = h.columns
	m := h.manifest
	head := struct {
		Report      string   `json:"report"`
		Title       string   `json:"title"`
		Query       Filters  `json:"query"`
		Period      Period   `json:"period"`
		GeneratedAt string   `json:"generated_at"`
		Columns     []string `json:"columns"`
	}{m.Report, h.title, m.Filters, m.Period, m.GeneratedAt, nil}
	for _, c := range h.columns {
		head.Columns = append(head.Columns, c.Name)
	}
	b, err := json.Marshal(head)
	if err != nil {
		return err
	}
	j.w.Write(b[:len(b)-1])
	j.w.WriteString(`,"rows":[`)
	return nil
}

func (j *jsonWriter) row(r *Row) error {
	if j.n > 0 {
		j.w.WriteByte(',')
	}
	j.n++
	j.w.WriteString("\n{")
	for i, c := range r.Cells {
		if i > 0 {
			j.w.WriteByte(',')
		}
		k, _ := json.Marshal(j.cols[i].Name)
		v, _ := json.Marshal(c)
		j.w.Write(k)
		j.w.WriteByte(':')
		j.w.Write(v)
	}
	j.w.WriteByte('}')
	if j.w.Buffered() > 32<<10 {
		return j.w.Flush()
	}
	return nil
}

func (j *jsonWriter) end(rows int) error {
	fmt.Fprintf(j.w, "\n],\"row_count\":%d}\n", rows)
	return j.w.Flush()
}
