package report

import (
	"fmt"
	"io"

	"github.com/xuri/excelize/v2"
)

// Sheets of an XLSX report.
const (
	SheetRows  = "Report"
	SheetAbout = "About"
)

// xlsxWriter writes a workbook: the rows on the first sheet, through
// excelize's stream writer (which spills to a temporary file, so a large
// report is not held in memory), and the query on a second.
type xlsxWriter struct {
	out  io.Writer
	f    *excelize.File
	sw   *excelize.StreamWriter
	m    *Manifest
	line int
}

func (x *xlsxWriter) begin(h header) error {
	x.f = excelize.NewFile()
	x.m = h.manifest
	if err := x.f.SetSheetName("Sheet1", SheetRows); err != nil {
		return err
	}
	sw, err := x.f.NewStreamWriter(SheetRows)
	if err != nil {
		return err
	}
	x.sw = sw
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	names := make([]any, len(h.columns))
	for i, c := range h.columns {
		names[i] = c.Name
		if err := sw.SetColWidth(i+1, i+1, float64(xlsxWidth(c.Width))); err != nil {
			return err
		}
	}
	return x.add(names)
}

func (x *xlsxWriter) add(cells []any) error {
	x.line++
	cell, err := excelize.CoordinatesToCellName(1, x.line)
	if err != nil {
		return err
	}
	return x.sw.SetRow(cell, cells)
}

func (x *xlsxWriter) row(r *Row) error {
	cells := make([]any, len(r.Cells))
	for i, c := range r.Cells {
		cells[i] = c
	}
	return x.add(cells)
}

func (x *xlsxWriter) end(rows int) error {
	defer x.f.Close()
	if err := x.sw.Flush(); err != nil {
		return err
	}
	if _, err := x.f.NewSheet(SheetAbout); err != nil {
		return err
	}
	m := x.m
	about := [][2]string{
		{"report", m.Report}, {"period.from", m.Period.From}, {"period.to", m.Period.To},
		{"tenants", list(m.Filters.Tenants)}, {"domains", list(m.Filters.Domains)}, {"groups", list(m.Filters.Groups)},
		{"users", list(m.Filters.Users)}, {"outcomes", list(m.Filters.Outcomes)}, {"source", sourceText(m)},
		{"rows", fmt.Sprint(rows)}, {"generated_at", m.GeneratedAt},
	}
	for i, kv := range about {
		if err := x.f.SetSheetRow(SheetAbout, fmt.Sprintf("A%d", i+1), &[]any{kv[0], kv[1]}); err != nil {
			return err
		}
	}
	_, err := x.f.WriteTo(x.out)
	return err
}

// xlsxWidth is a column's width in the sheet: its table width, within
// bounds, or a default for the columns the table leaves out.
func xlsxWidth(w int) int {
	if w == 0 {
		return 30
	}
	return min(w, 40) + 2
}
