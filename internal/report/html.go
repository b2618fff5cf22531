package report

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"maps"
	"slices"
	"strings"
)

// htmlWriter writes one self-contained HTML page: the filters, the rows
// as they come, then the charts, which the style sheet shows above the
// rows. Nothing is loaded from the network: the style sheet and the SVG
// charts are inline.
type htmlWriter struct {
	w       *bufio.Writer
	byDay   map[string]map[string]int // day -> outcome -> count
	methods map[string]int
}

func newHTMLWriter(w io.Writer) *htmlWriter {
	return &htmlWriter{w: bufio.NewWriter(w), byDay: map[string]map[string]int{}, methods: map[string]int{}}
}

const htmlStyle = `
:root{color-scheme:light;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:14px;color:#1b1f24}
body{margin:24px}
h1{font-size:20px;margin:0 0 8px}
.meta{border-collapse:collapse;margin:0 0 16px}
.meta th{text-align:left;padding:2px 12px 2px 0;color:#57606a;font-weight:600}
.meta td{padding:2px 0}
main{display:flex;flex-direction:column;gap:16px}
.charts{order:-1;display:flex;flex-wrap:wrap;gap:24px}
.charts figure{margin:0}
.charts figcaption{font-weight:600;margin-bottom:4px}
svg text{font-size:11px;fill:#1b1f24}
table.rows{border-collapse:collapse;width:100%}
table.rows th,table.rows td{border-bottom:1px solid #d0d7de;padding:4px 6px;text-align:left;vertical-align:top;overflow-wrap:break-word}
.rows{overflow-x:auto}
table.rows thead th{background:#f6f8fa;position:sticky;top:0}
table.rows tbody tr:nth-child(even){background:#fbfcfd}
.count{color:#57606a}
@media print{
 body{margin:0;font-size:10px}
 table.rows thead{display:table-header-group}
 table.rows thead th{position:static}
 table.rows tr{break-inside:avoid}
 .charts{break-after:page}
}`

func (h *htmlWriter) begin(hd header) error {
	m := hd.manifest
	w := h.w
	fmt.Fprintf(w, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>%s</title>\n", esc(hd.title))
	w.WriteString("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n")
	fmt.Fprintf(w, "<style>%s\n</style>\n</head>\n<body>\n<h1>%s</h1>\n<table class=\"meta\" id=\"filters\">\n", htmlStyle, esc(hd.title))
	period := func(s string) string {
		if s == "" {
			return "open"
		}
		return s
	}
	meta := [][2]string{
		{"Report", m.Report},
		{"Period", period(m.Period.From) + " to " + period(m.Period.To) + " (end excluded)"},
		{"Tenants", list(m.Filters.Tenants)}, {"Domains", list(m.Filters.Domains)}, {"Groups", list(m.Filters.Groups)},
		{"Users", list(m.Filters.Users)}, {"Outcomes", list(m.Filters.Outcomes)}, {"Actions", strings.Join(m.Filters.Actions, ", ")},
		{"Source", sourceText(m)}, {"Generated", m.GeneratedAt},
	}
	for _, kv := range meta {
		fmt.Fprintf(w, "<tr><th>%s</th><td>%s</td></tr>\n", esc(kv[0]), esc(kv[1]))
	}
	w.WriteString("</table>\n<main>\n<section class=\"rows\">\n<table class=\"rows\" id=\"rows\">\n<thead><tr>")
	for _, c := range hd.columns {
		fmt.Fprintf(w, "<th>%s</th>", esc(c.Name))
	}
	w.WriteString("</tr></thead>\n<tbody>\n")
	return nil
}

func list(v []string) string {
	if len(v) == 0 {
		return "all"
	}
	return strings.Join(v, ", ")
}

func sourceText(m *Manifest) string {
	s := m.Source
	if s.Kind == "files" {
		names := make([]string, len(s.Files))
		for i, f := range s.Files {
			names[i] = f.Path
		}
		return "files: " + strings.Join(names, ", ")
	}
	return s.Kind + " " + s.Address + " " + s.Index
}

func (h *htmlWriter) row(r *Row) error {
	n := r.Count
	if n == 0 {
		n = 1
	}
	if r.Day != "" {
		d := h.byDay[r.Day]
		if d == nil {
			d = map[string]int{}
			h.byDay[r.Day] = d
		}
		d[r.Outcome] += n
	}
	for _, m := range r.Methods {
		h.methods[m] += n
	}
	h.w.WriteString("<tr>")
	for _, c := range r.Cells {
		h.w.WriteString("<td>")
		h.w.WriteString(esc(c))
		h.w.WriteString("</td>")
	}
	h.w.WriteString("</tr>\n")
	if h.w.Buffered() > 32<<10 {
		return h.w.Flush()
	}
	return nil
}

func (h *htmlWriter) end(rows int) error {
	w := h.w
	fmt.Fprintf(w, "</tbody>\n</table>\n<p class=\"count\" id=\"row-count\">%d rows</p>\n</section>\n<section class=\"charts\">\n", rows)
	h.dayChart()
	h.methodChart()
	w.WriteString("</section>\n</main>\n</body>\n</html>\n")
	return w.Flush()
}

// palette colours outcomes and methods in a fixed order.
var palette = []string{"#2da44e", "#cf222e", "#bf8700", "#8250df", "#0969da", "#57606a", "#1a7f37", "#d1242f", "#9a6700", "#6639ba"}

// outcomeColor keeps the usual colours for the usual outcomes.
func outcomeColor(o string, i int) string {
	switch o {
	case "success", FlowReset:
		return "#2da44e"
	case "failure", FlowFailed:
		return "#cf222e"
	case FlowBlocked:
		return "#8250df"
	case FlowAbandoned:
		return "#bf8700"
	}
	return palette[(i+4)%len(palette)]
}

// dayChart is a stacked bar per day, one segment per outcome.
func (h *htmlWriter) dayChart() {
	w := h.w
	days := slices.Sorted(maps.Keys(h.byDay))
	outcomeSet := map[string]bool{}
	peak := 0
	for _, d := range days {
		t := 0
		for o, n := range h.byDay[d] {
			outcomeSet[o] = true
			t += n
		}
		peak = max(peak, t)
	}
	outcomes := slices.Sorted(maps.Keys(outcomeSet))
	const plotH, barW, gap, left, top = 160, 18, 6, 40, 10
	width := max(left+len(days)*(barW+gap)+10, 320)
	height := top + plotH + 40 + 16*len(outcomes)
	fmt.Fprintf(w, "<figure><figcaption>Per day by outcome</figcaption>\n<svg id=\"chart-by-day\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"per day by outcome\">\n",
		width, height, width, height)
	fmt.Fprintf(w, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#8c959f\"/>\n", left, top+plotH, width-5, top+plotH)
	fmt.Fprintf(w, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%d</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>\n", left-4, top+8, peak, left-4, top+plotH)
	for i, d := range days {
		x := left + i*(barW+gap) + gap/2
		y := top + plotH
		for j, o := range outcomes {
			n := h.byDay[d][o]
			if n == 0 || peak == 0 {
				continue
			}
			bh := max(n*plotH/peak, 1)
			y -= bh
			fmt.Fprintf(w, "<rect class=\"bar\" data-day=\"%s\" data-outcome=\"%s\" data-count=\"%d\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"><title>%s %s: %d</title></rect>\n",
				esc(d), esc(o), n, x, y, barW, bh, outcomeColor(o, j), esc(d), esc(o), n)
		}
		if len(days) <= 31 || i%7 == 0 {
			fmt.Fprintf(w, "<text x=\"%d\" y=\"%d\" transform=\"rotate(45 %d %d)\">%s</text>\n", x, top+plotH+12, x, top+plotH+12, esc(d[5:]))
		}
	}
	for j, o := range outcomes {
		y := top + plotH + 40 + 16*j
		fmt.Fprintf(w, "<rect class=\"legend\" x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">%s</text>\n", left, y, outcomeColor(o, j), left+14, y+9, esc(o))
	}
	w.WriteString("</svg></figure>\n")
}

// methodChart is a horizontal bar per verification method.
func (h *htmlWriter) methodChart() {
	w := h.w
	methods := slices.Sorted(maps.Keys(h.methods))
	peak := 0
	for _, n := range h.methods {
		peak = max(peak, n)
	}
	const left, barH, gap, plotW = 150, 16, 6, 300
	height := max(len(methods)*(barH+gap)+20, 40)
	fmt.Fprintf(w, "<figure><figcaption>By method</figcaption>\n<svg id=\"chart-by-method\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"by method\">\n",
		left+plotW+60, height, left+plotW+60, height)
	if len(methods) == 0 {
		w.WriteString("<text x=\"4\" y=\"20\">no method recorded</text>\n")
	}
	for i, m := range methods {
		y := 10 + i*(barH+gap)
		bw := max(h.methods[m]*plotW/peak, 1)
		fmt.Fprintf(w, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text><rect class=\"bar\" data-method=\"%s\" data-count=\"%d\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"><title>%s: %d</title></rect><text x=\"%d\" y=\"%d\">%d</text>\n",
			left-6, y+12, esc(m), esc(m), h.methods[m], left, y, bw, barH, palette[(i+4)%len(palette)], esc(m), h.methods[m], left+bw+4, y+12, h.methods[m])
	}
	w.WriteString("</svg></figure>\n")
}

func esc(s string) string { return html.EscapeString(s) }
