package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/app"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore/storetest"
	"github.com/sspr-exporter/sspr-exporter/internal/report"
)

// TestReportCommand runs the report command on the corpus written as
// NDJSON: its output, its usage errors (exit 2) and the --group check.
func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	corpus := storetest.Corpus(t)
	in := filepath.Join(dir, "corpus.ndjson")
	storetest.WriteNDJSON(t, in, corpus)
	bare := make([]ecs.Event, len(corpus))
	copy(bare, corpus)
	for i := range bare {
		bare[i].User.Target.Group = ecs.TargetGroup{}
	}
	noGroups := filepath.Join(dir, "no-groups.ndjson")
	storetest.WriteNDJSON(t, noGroups, bare)
	t.Setenv("SSPR_CONFIG", "")
	cases := []struct {
		name  string
		args  []string
		usage bool     // a *app.UsageError
		out   []string // in stdout, or in the error
	}{
		{"csv", []string{"resets", "--input", in, "--from", "2026-03-01", "--to", "2026-11-30", "--format", "csv"}, false,
			[]string{"time,user,domain,source_ip", "noor.silva0@contoso.example", "'+Paris, FR"}},
		{"filters", []string{"failed-resets", "--input", in, "--from", "2026-03-01", "--to", "2026-11-30", "--user", "SAM.OLSEN2@contoso.example", "--format", "json"}, false,
			[]string{`"users":["SAM.OLSEN2@contoso.example"]`, `"row_count":1`}},
		{"group", []string{"admin-resets", "--input", in, "--from", "2026-03-01", "--to", "2026-11-30", "--group", "finance", "--format", "csv"}, false,
			[]string{"lee.tanaka6@contoso.example"}},
		{"files after the flags", []string{"summary", "--from", "2026-03-01", "--to", "2026-11-30", "--input", in, noGroups}, false, []string{"DAY", "(13 rows)"}},
		{"no group data", []string{"resets", "--input", noGroups, "--from", "2026-03-01", "--to", "2026-11-30", "--group", "finance"}, true, []string{"[enrich.graph]", "enabled = true"}},
		{"no name", []string{"--input", in}, true, []string{"resets, failed-resets"}},
		{"unknown report", []string{"logins", "--input", in}, true, []string{`unknown report "logins"`}},
		{"unknown format", []string{"resets", "--input", in, "--format", "pdf"}, true, []string{`unknown format "pdf"`}},
		{"bad outcome", []string{"resets", "--input", in, "--outcome", "maybe"}, true, []string{"--outcome"}},
		{"since and from", []string{"resets", "--input", in, "--since", "7d", "--from", "2026-03-01"}, true, []string{"either --since or --from"}},
		{"bad since", []string{"resets", "--input", in, "--since", "soon"}, true, []string{"--since"}},
		{"empty period", []string{"resets", "--input", in, "--from", "2026-03-02", "--to", "2026-03-01"}, true, []string{"is empty"}},
		{"no store", []string{"resets"}, true, []string{"--config FILE is required"}},
		{"missing input", []string{"resets", "--input", filepath.Join(dir, "missing.ndjson")}, true, []string{"missing.ndjson"}},
		{"stray arguments", []string{"resets", "extra"}, true, []string{"unexpected arguments"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := app.Report(context.Background(), c.args, app.Std{Out: &out, Err: &errOut})
			var ue *app.UsageError
			if c.usage != errors.As(err, &ue) {
				t.Fatalf("error %v, want a usage error: %v", err, c.usage)
			}
			if !c.usage && err != nil {
				t.Fatal(err)
			}
			text := out.String()
			if err != nil {
				text = err.Error()
			}
			for _, s := range c.out {
				if !strings.Contains(text, s) {
					t.Errorf("%q not in:\n%s", s, text)
				}
			}
		})
	}
}

// TestReportCommandOutputFile checks that --output writes the report and
// a manifest whose digests are the files'.
func TestReportCommandOutputFile(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "corpus.ndjson")
	storetest.WriteNDJSON(t, in, storetest.Corpus(t))
	out := filepath.Join(dir, "flows.html")
	var stderr bytes.Buffer
	err := app.Report(context.Background(), []string{"flows", "--input", in, "--from", "2026-03-01", "--to", "2026-11-30", "--domain", "contoso.example", "--output", out}, app.Std{Out: &bytes.Buffer{}, Err: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(body, []byte("<!DOCTYPE html>")) {
		t.Errorf("not HTML (the format comes from the extension): %.60s", body)
	}
	var m report.Manifest
	b, err := os.ReadFile(out + ".manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	inSum := sha256.Sum256(must(os.ReadFile(in)))
	switch {
	case m.SHA256 != hex.EncodeToString(sum[:]):
		t.Errorf("manifest sha256 %s, file's %x", m.SHA256, sum)
	case m.Report != "flows" || m.Format != "html" || m.Rows != 19 || m.File != out:
		t.Errorf("manifest %+v", m)
	case m.Period.From != "2026-03-01T00:00:00Z" || m.Period.To != "2026-12-01T00:00:00Z":
		t.Errorf("period %+v (--to a date includes the day)", m.Period)
	case len(m.Filters.Domains) != 1 || m.Source.Kind != "files" || len(m.Source.Files) != 1 || m.Source.Files[0].SHA256 != hex.EncodeToString(inSum[:]):
		t.Errorf("filters %+v source %+v", m.Filters, m.Source)
	case m.GeneratedAt == "":
		t.Error("no generation time")
	}
	if !strings.Contains(stderr.String(), "19 rows") {
		t.Errorf("stderr: %s", stderr.String())
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
