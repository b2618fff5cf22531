package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sspr-exporter/sspr-exporter/internal/report"
)

// chromium returns the browser's path, skipping t when there is none
// (failing it under SSPR_REQUIRE_SERVERS=1).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SSPR_REQUIRE_SERVERS") == "1" {
		t.Fatal("chromium is not installed: run scripts/deps/chromium.sh")
	}
	t.Skip("chromium is not installed (scripts/deps/chromium.sh installs it)")
	return ""
}

// TestHTMLInBrowser opens HTML reports in headless Chromium: it takes a
// screenshot, checks that the rows and the chart bars are in the page,
// that the page loaded nothing, and that it prints.
func TestHTMLInBrowser(t *testing.T) {
	exe := chromium(t)
	r, _ := corpusFiles(t)
	dir := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.WindowSize(1400, 1000),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	for _, name := range []string{"resets", "flows", "summary"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".html")
			m, err := report.WriteFile(context.Background(), r, report.Spec{Name: name, Query: period, Format: "html"}, path, now)
			if err != nil {
				t.Fatal(err)
			}
			var js bytes.Buffer
			if _, err := report.Generate(context.Background(), r, report.Spec{Name: name, Query: period, Format: "json"}, &js, now); err != nil {
				t.Fatal(err)
			}
			var want struct {
				Columns []string            `json:"columns"`
				Rows    []map[string]string `json:"rows"`
			}
			if err := json.Unmarshal(js.Bytes(), &want); err != nil {
				t.Fatal(err)
			}
			if err := chromedp.Do(bctx, chromedp.Navigate("file://"+path), chromedp.WaitReady(chromedp.CSS("#chart-by-day"))); err != nil {
				t.Fatal(err)
			}
			title := run(t, bctx, chromedp.Title())
			rows := run(t, bctx, chromedp.Evaluate[int](`document.querySelectorAll("#rows tbody tr").length`))
			cells := run(t, bctx, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll("#rows tbody tr")).map(tr => Array.from(tr.cells).map(td => td.textContent))`))
			dayBars := run(t, bctx, chromedp.Evaluate[int](`document.querySelectorAll("#chart-by-day rect.bar").length`))
			methodBar := run(t, bctx, chromedp.Evaluate[int](`document.querySelectorAll("#chart-by-method rect.bar").length`))
			resources := run(t, bctx, chromedp.Evaluate[int](`performance.getEntriesByType("resource").length`))
			// The charts come after the rows in the file, and the style
			// sheet shows them first.
			chartsFirst := run(t, bctx, chromedp.Evaluate[bool](`document.querySelector(".charts").getBoundingClientRect().top < document.querySelector("#rows").getBoundingClientRect().top`))
			shot := run(t, bctx, chromedp.FullScreenshot(100))
			shotPath := filepath.Join(t.TempDir(), name+".png")
			if err := os.WriteFile(shotPath, shot, 0o600); err != nil {
				t.Fatal(err)
			}
			if len(shot) < 1000 || !bytes.HasPrefix(shot, []byte("\x89PNG\r\n\x1a\n")) {
				t.Errorf("screenshot %s: %d bytes, not a PNG", shotPath, len(shot))
			}
			if rows != m.Rows || len(cells) != len(want.Rows) {
				t.Fatalf("%d rows in the page, %d in the manifest, %d in the JSON report", rows, m.Rows, len(want.Rows))
			}
			for i, row := range cells {
				for j, c := range row {
					if w := want.Rows[i][want.Columns[j]]; c != w {
						t.Errorf("row %d %s: %q in the page, %q in the JSON report", i, want.Columns[j], c, w)
					}
				}
			}
			if dayBars == 0 {
				t.Error("no bar in the per-day chart")
			}
			if name != "resets" && methodBar == 0 {
				t.Error("no bar in the method chart")
			}
			if resources != 0 {
				t.Errorf("the page loaded %d resources; it must be self-contained", resources)
			}
			if title == "" {
				t.Error("no title")
			}
			if !chartsFirst {
				t.Error("the charts are not above the rows")
			}
			pdf := run(t, bctx, chromedp.PrintToPDF())
			if !bytes.HasPrefix(pdf, []byte("%PDF")) {
				t.Errorf("print: not a PDF (%d bytes)", len(pdf))
			}
		})
	}
}

// run runs one action in the browser, failing t on error.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
