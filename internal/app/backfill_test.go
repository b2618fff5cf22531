package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/sspr-exporter/sspr-exporter/internal/backfill/coverage"
	"github.com/sspr-exporter/sspr-exporter/internal/source/archive/archivetest"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/azurite"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/graphapi"
)

func tomlQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// backfillConfig writes a config with a file output and dead letters in
// dir, plus extra.
func backfillConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	p := filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf(`
[output.file]
path = %s

[dead_letter]
path = %s

[log]
level = "info"
format = "json"

[telemetry]
address = ""
%s`, tomlQuote(filepath.Join(dir, "out.ndjson")), tomlQuote(filepath.Join(dir, "dl.ndjson")), extra)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runBackfillCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	err := Backfill(context.Background(), args, Std{In: strings.NewReader(""), Out: &out, Err: &errb})
	code := 0
	var ue *UsageError
	var ee *ExitError
	switch {
	case err == nil:
	case errors.As(err, &ue):
		code = 2
		errb.WriteString(err.Error() + "\n")
	case errors.As(err, &ee):
		code = ee.Code
	default:
		code = 1
		errb.WriteString(err.Error() + "\n")
	}
	return code, out.String(), errb.String()
}

// TestBackfillUsage: a wrong command line is one line and exit 2, before
// anything is read.
func TestBackfillUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := backfillConfig(t, dir, "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", cfg}, "'backfill graph' or 'backfill blob'"},
		{[]string{"tape", "--config", cfg}, "'backfill graph' or 'backfill blob'"},
		{[]string{"blob", "--config", cfg}, "--from DATE is required"},
		{[]string{"blob", "--config", cfg, "--since", "3d"}, "only for backfill graph"},
		{[]string{"graph", "--config", cfg}, "--since or --from is required"},
		{[]string{"graph", "--config", cfg, "--since", "3d", "--from", "2026-01-01"}, "not both"},
		{[]string{"graph", "--config", cfg, "--since", "3y"}, "not an age"},
		{[]string{"graph", "--config", cfg, "--from", "2026-02-01", "--to", "2026-01-01"}, "is empty"},
		{[]string{"graph", "--config", cfg, "--since", "3d", "--progress", "fancy"}, "--progress"},
		{[]string{"blob", "--config", cfg, "--from", "2026-01-01"}, "backfill.blob.account_url: set it"},
		{[]string{"graph", "--since", "3d"}, "--config FILE is required"},
	} {
		code, _, stderr := runBackfillCmd(c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, %q; want 2 and one line with %q", c.args, code, stderr, c.want)
		}
	}
}

// TestBackfillRefusesExpiringRange: a range whose indices the ILM policy
// deletes already is refused in one line with exit 2, unless
// --allow-expiring; nothing is contacted first.
func TestBackfillRefusesExpiringRange(t *testing.T) {
	dir := t.TempDir()
	cfg := backfillConfig(t, dir, `
[output.elasticsearch]
enabled = true
addresses = ["http://127.0.0.1:1"]
ilm.retention_days = 30

[backfill.blob]
account_url = "https://contoso.blob.core.windows.net"
`)
	from := time.Now().UTC().AddDate(0, -3, 0).Format(time.DateOnly)
	code, _, stderr := runBackfillCmd("blob", "--config", cfg, "--from", from)
	if code != 2 || !strings.Contains(stderr, "retention_days = 30") || !strings.Contains(stderr, "--allow-expiring") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("exit %d, %q", code, stderr)
	}
	// With it the check passes and the unreachable node is what fails.
	code, _, stderr = runBackfillCmd("blob", "--config", cfg, "--from", from, "--allow-expiring")
	if code != 1 || strings.Contains(stderr, "--allow-expiring") {
		t.Errorf("--allow-expiring: exit %d, %q", code, stderr)
	}
	// A recent range passes with the same retention.
	code, _, stderr = runBackfillCmd("blob", "--config", cfg, "--from", time.Now().UTC().Format(time.DateOnly))
	if code != 1 || strings.Contains(stderr, "retention") {
		t.Errorf("recent: exit %d, %q", code, stderr)
	}
}

// TestBackfillSettings: the [backfill] table is read with its secret
// references; unknown keys and bad values name their key.
func TestBackfillSettings(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("BF_TEST_SECRET", "s3cr3t-value")
	cfg := backfillConfig(t, dir, `
[backfill.graph]
tenant_id = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
client_id = "0d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e"
client_secret = "env:BF_TEST_SECRET"
slice = "6h"

[backfill.blob]
connection_string = "env:BF_TEST_SECRET"
workers = 8
`)
	_, s, err := loadBackfill(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Graph.ClientSecret.Reveal() != "s3cr3t-value" || s.Graph.Slice != 6*time.Hour || s.Blob.Workers != 8 || s.Blob.Container != "insights-logs-auditlogs" || s.Graph.PageSize != 999 {
		t.Errorf("settings %+v", s)
	}
	bad := backfillConfig(t, t.TempDir(), `
[backfill.graph]
slice = "90m"
colour = "blue"
`)
	_, _, err = loadBackfill(bad)
	if err == nil || !strings.Contains(err.Error(), "backfill.graph.colour: unknown key") || !strings.Contains(err.Error(), "1 more problem") {
		t.Errorf("bad settings: %v", err)
	}
	other := backfillConfig(t, t.TempDir(), `
[output.file]
colour = "blue"
`)
	if _, _, err := loadBackfill(other); err == nil || !strings.Contains(err.Error(), "output.file") {
		t.Errorf("a problem outside [backfill]: %v", err)
	}
}

func graphSection(t testing.TB, s *graphapi.Server) string {
	return fmt.Sprintf(`
[backfill.graph]
tenant_id = %q
client_id = %q
client_secret = %q
authority_host = %q
disable_instance_discovery = true
endpoint = %q
ca_file = %q
request_interval = "0s"
`, graphapi.TenantDomain, graphapi.ClientID, graphapi.ClientSecret, s.URL(), s.URL(), s.CAFile(t, t.TempDir()))
}

func outputIDs(t *testing.T, path string) map[string]int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for line := range bytes.Lines(data) {
		var d struct {
			Event struct{ ID string } `json:"event"`
			Cloud struct {
				Account struct{ ID string } `json:"account"`
			} `json:"cloud"`
		}
		if err := json.Unmarshal(line, &d); err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		if d.Cloud.Account.ID != graphapi.TenantID {
			t.Errorf("document %s has tenant %q", d.Event.ID, d.Cloud.Account.ID)
		}
		ids[d.Event.ID]++
	}
	return ids
}

// TestBackfillGraphToFile: Graph's SSPR records of the range go to the
// outputs once, with the tenant of the token; the coverage report is
// printed and written; a second run reads nothing again.
func TestBackfillGraphToFile(t *testing.T) {
	s := graphapi.New(t)
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3)
	var want []string
	for i := range 40 {
		at := day.Add(time.Duration(i) * 90 * time.Minute)
		id := fmt.Sprintf("SSPR_%04d", i)
		name, service := "Reset password (self-service)", sspr.ServiceName
		if i%4 == 3 {
			name, service = "Update user", sspr.ServiceCoreDirectory
		} else {
			want = append(want, id)
		}
		s.AddAudits(map[string]any{
			"id": id, "category": "UserManagement", "correlationId": "c" + id, "result": "success", "activityDisplayName": name,
			"activityDateTime": at.Format(time.RFC3339Nano), "loggedByService": service,
			"initiatedBy":     map[string]any{"user": map[string]any{"id": "u1", "userPrincipalName": "a@contoso.example"}},
			"targetResources": []any{map[string]any{"id": "u1", "type": "User", "userPrincipalName": "a@contoso.example"}},
		})
	}
	s.SetPageSize(7)
	dir := t.TempDir()
	cfg := backfillConfig(t, dir, graphSection(t, s))
	statePath, reportPath := filepath.Join(dir, "state.json"), filepath.Join(dir, "report.json")
	from, to := day.Format(time.RFC3339), day.Add(60*time.Hour).Format(time.RFC3339)
	code, _, stderr := runBackfillCmd("graph", "--config", cfg, "--from", from, "--to", to, "--state", statePath, "--report", reportPath, "--progress", "off")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	ids := outputIDs(t, filepath.Join(dir, "out.ndjson"))
	var got []string
	for id, n := range ids {
		got = append(got, id)
		if n != 1 {
			t.Errorf("%s written %d times", id, n)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("documents %v, want %v", got, want)
	}
	if !strings.Contains(stderr, "coverage of backfill graph") || !strings.Contains(stderr, "(complete)") {
		t.Errorf("stderr lacks the report:\n%s", stderr)
	}
	var rep coverage.Report
	data, err := os.ReadFile(reportPath)
	if err != nil || json.Unmarshal(data, &rep) != nil {
		t.Fatalf("report %s: %v", data, err)
	}
	tr := rep.Tenants[0]
	if !rep.Complete || tr.TenantID != graphapi.TenantID || tr.Hours != 60 || tr.SSPRDocuments != int64(len(want)) || tr.Records != int64(len(want)) || tr.HoursWithData != len(want) {
		t.Errorf("report %+v", rep)
	}
	requests := len(s.Paths())
	code, _, stderr = runBackfillCmd("graph", "--config", cfg, "--from", from, "--to", to, "--state", statePath, "--progress", "off")
	if code != 0 || len(s.Paths()) != requests {
		t.Errorf("second run: exit %d, %d more requests; want 0 and none: %s", code, len(s.Paths())-requests, stderr)
	}
	if ids := outputIDs(t, filepath.Join(dir, "out.ndjson")); len(ids) != len(want) {
		t.Errorf("second run wrote documents again: %d", len(ids))
	}
}

// TestBackfillBlobToFile: an archive's SSPR events go to the outputs; the
// coverage report names the hours without a blob.
func TestBackfillBlobToFile(t *testing.T) {
	srv := azurite.Start(t)
	cc, err := container.NewClientFromConnectionString(srv.ConnectionString(), "insights-logs-auditlogs", nil)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	a, err := archivetest.Generate(archivetest.Options{Tenant: graphapi.TenantID, From: day, Hours: 24, Users: 200, SSPRShare: 0.05, Seed: 5, Missing: map[int]bool{7: true, 8: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Upload(context.Background(), cc); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := backfillConfig(t, dir, fmt.Sprintf("\n[backfill.blob]\nconnection_string = %q\n", srv.ConnectionString()))
	reportPath := filepath.Join(dir, "report.json")
	code, _, stderr := runBackfillCmd("blob", "--config", cfg, "--from", day.Format(time.DateOnly), "--to", day.Format(time.DateOnly), "--state", filepath.Join(dir, "s.json"), "--report", reportPath, "--progress", "log")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	ids := outputIDs(t, filepath.Join(dir, "out.ndjson"))
	if len(ids) != len(a.SSPRIDs) {
		t.Errorf("%d documents, want %d", len(ids), len(a.SSPRIDs))
	}
	for _, id := range a.SSPRIDs {
		if ids[id] != 1 {
			t.Errorf("%s written %d times", id, ids[id])
		}
	}
	var rep coverage.Report
	data, _ := os.ReadFile(reportPath)
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	tr := rep.Tenants[0]
	if !rep.Complete || tr.Hours != 24 || tr.HoursWithData != 22 || len(tr.Gaps) != 1 || tr.Gaps[0].Hours != 2 || tr.Records != int64(a.Records) {
		t.Errorf("report %+v", tr)
	}
	if strings.Contains(stderr, srv.ConnectionString()) || strings.Contains(string(data), "AccountKey") {
		t.Error("the connection string leaked")
	}
	if !strings.Contains(stderr, "backfill progress") && !strings.Contains(stderr, "backfill finished reading") {
		t.Errorf("no progress lines with --progress log:\n%s", stderr)
	}
}

// TestBackfillStoppedBySignalContinues: SIGTERM ends a backfill with exit
// 143 after checkpointing what was delivered; run again, it delivers the
// rest, and the two runs together deliver every event.
func TestBackfillStoppedBySignalContinues(t *testing.T) {
	srv := azurite.Start(t)
	cc, err := container.NewClientFromConnectionString(srv.ConnectionString(), "insights-logs-auditlogs", nil)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3)
	a, err := archivetest.Generate(archivetest.Options{Tenant: graphapi.TenantID, From: day, Hours: 48, Users: 3000, SSPRShare: 0.05, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Upload(context.Background(), cc); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := backfillConfig(t, dir, fmt.Sprintf("\n[pipeline]\nmax_in_flight = 1\n[backfill.blob]\nconnection_string = %q\nworkers = 1\n", srv.ConnectionString()))
	out := filepath.Join(dir, "out.ndjson")
	args := []string{"blob", "--config", cfg, "--from", day.Format(time.DateOnly), "--to", day.AddDate(0, 0, 1).Format(time.DateOnly), "--state", filepath.Join(dir, "s.json"), "--progress", "off"}
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		for {
			if st, err := os.Stat(out); err == nil && st.Size() > 0 {
				cancel(&Interrupt{Signal: syscall.SIGTERM})
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var errb bytes.Buffer
	err = Backfill(ctx, args, Std{In: strings.NewReader(""), Out: io.Discard, Err: &errb})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 143 {
		t.Fatalf("stopped: %v, want exit 143\n%s", err, errb.String())
	}
	first := outputIDs(t, out)
	if len(first) == 0 || len(first) == len(a.SSPRIDs) || !strings.Contains(errb.String(), "incomplete") {
		t.Fatalf("the stopped run delivered %d of %d events; report:\n%s", len(first), len(a.SSPRIDs), errb.String())
	}
	code, _, stderr := runBackfillCmd(args...)
	if code != 0 {
		t.Fatalf("second run: exit %d: %s", code, stderr)
	}
	all := outputIDs(t, out)
	for _, id := range a.SSPRIDs {
		if all[id] == 0 {
			t.Fatalf("event %s lost", id)
		}
	}
	again := 0
	for id, n := range all {
		if n > 1 && first[id] > 0 {
			again++
		}
	}
	if again == len(first) {
		t.Errorf("the second run delivered again all %d events of the first: it did not continue", again)
	}
}
