package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/sspr-exporter/sspr-exporter/internal/backfill/coverage"
	"github.com/sspr-exporter/sspr-exporter/internal/source/archive"
	"github.com/sspr-exporter/sspr-exporter/internal/source/archive/archivetest"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/azurite"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/graphapi"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/searchnode"
)

// runResult is how one backfill process ended.
type runResult struct {
	killed bool
	code   int
}

// backfillOnce runs `sspr-exporter backfill args...`, appending its output
// to logPath; with killAfter > 0 it is killed with SIGKILL then, if still
// running.
func backfillOnce(t *testing.T, logPath string, killAfter time.Duration, env []string, args ...string) runResult {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "\n=== backfill %s (kill after %v)\n", strings.Join(args, " "), killAfter)
	cmd := exec.Command(exporterBin, append([]string{"backfill"}, args...)...)
	cmd.Env = append(childEnv(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timer <-chan time.Time
	if killAfter > 0 {
		timer = time.After(killAfter)
	}
	select {
	case err := <-done:
		return runResult{code: exitCode(err)}
	case <-timer:
		_ = cmd.Process.Kill()
		err := <-done
		if code := exitCode(err); code >= 0 {
			return runResult{code: code} // it had ended by itself
		}
		return runResult{killed: true, code: -1}
	case <-time.After(15 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("backfill still running after 15 minutes; log %s", logPath)
	}
	return runResult{}
}

// exitCode is the process's exit status, -1 when a signal ended it.
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -2
}

// killUntilDone runs the backfill, killing it at random moments, until a
// run ends by itself; after maxKills kills it lets the run finish. It
// returns how many runs were killed, and fails the test unless one of
// them was killed in the middle: some units of the state file done,
// others not.
func killUntilDone(t *testing.T, rng *rand.Rand, logPath, statePath string, maxKills int, lo, hi time.Duration, env []string, args ...string) int {
	t.Helper()
	kills, midway := 0, false
	defer func() {
		if kills > 0 && !midway && !t.Failed() {
			t.Errorf("none of the %d kills came in the middle of the backfill (raise SSPR_BACKFILL_USERS)", kills)
		}
	}()
	for {
		after := time.Duration(0)
		if kills < maxKills {
			after = randDuration(rng, lo, hi)
		}
		res := backfillOnce(t, logPath, after, env, args...)
		if res.killed {
			kills++
			done, total := stateUnits(t, statePath)
			t.Logf("kill %d after %v: %d of %d units checkpointed complete", kills, after, done, total)
			midway = midway || (done > 0 && done < total)
			continue
		}
		if res.code != 0 {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("backfill exited %d after %d kills:\n%s", res.code, kills, tail(string(b), 4000))
		}
		return kills
	}
}

// stateUnits reads the state file (it must be whole, whatever the kill
// interrupted) and counts its units done and in all.
func stateUnits(t *testing.T, path string) (done, total int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0
	}
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Units map[string]struct {
			Done bool `json:"done"`
		} `json:"units"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("state file torn by the kill: %v", err)
	}
	for _, u := range f.Units {
		total++
		if u.Done {
			done++
		}
	}
	return done, total
}

// es is a few requests to a search node.
type es struct {
	t   *testing.T
	url string
}

func (e es) do(method, path string, body any) map[string]any {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 || json.Unmarshal(data, &out) != nil {
		e.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return out
}

// ids refreshes index and returns, from _count and a terms aggregation
// on event.id, how many documents it holds and how many of each id.
func (e es) ids(index string, expect int) (int, map[string]int) {
	e.t.Helper()
	e.do(http.MethodPost, "/"+index+"/_refresh", nil)
	count := int(e.do(http.MethodGet, "/"+index+"/_count", nil)["count"].(float64))
	res := e.do(http.MethodPost, "/"+index+"/_search", map[string]any{
		"size": 0, "track_total_hits": true,
		"aggs": map[string]any{"ids": map[string]any{"terms": map[string]any{"field": "event.id", "size": expect + 100}}},
	})
	out := map[string]int{}
	for _, b := range res["aggregations"].(map[string]any)["ids"].(map[string]any)["buckets"].([]any) {
		m := b.(map[string]any)
		out[m["key"].(string)] = int(m["doc_count"].(float64))
	}
	return count, out
}

// template maps event.id as the exporter's templates do: the test nodes
// run without the ILM plugin, so the exporter's setup cannot run there.
func (e es) template(prefix string) {
	e.t.Helper()
	e.do(http.MethodPut, "/_index_template/"+prefix, map[string]any{
		"index_patterns": []string{prefix + "-*"},
		"template": map[string]any{
			"settings": map[string]any{"number_of_replicas": 0},
			"mappings": map[string]any{"properties": map[string]any{"event": map[string]any{"properties": map[string]any{"id": map[string]any{"type": "keyword"}}}}},
		},
	})
}

// exactlyOnce checks that the index holds each id once and nothing else.
func exactlyOnce(t *testing.T, node es, index string, ids []string) {
	t.Helper()
	count, got := node.ids(index, len(ids))
	checkOnce(t, count, got, ids)
}

// checkOnce checks a _count and the documents by id against the ids.
func checkOnce(t testing.TB, count int, got map[string]int, ids []string) {
	t.Helper()
	if count != len(ids) {
		t.Errorf("_count %d, want %d", count, len(ids))
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("event %s stored %d times", id, got[id])
		}
	}
	if len(got) != len(ids) {
		t.Errorf("%d distinct ids in the index, %d generated", len(got), len(ids))
	}
}

func esSection(node *searchnode.Node, prefix string) string {
	return fmt.Sprintf(`
[output.file]
enabled = false

[output.elasticsearch]
enabled = true
addresses = [%s]
skip_setup_check = true
index.prefix = %s
bulk.max_docs = 500

[pipeline]
max_in_flight = 4
shutdown_grace = "20s"

[log]
level = "info"
format = "json"

[telemetry]
address = ""
`, tomlStr(node.URL()), tomlStr(prefix))
}

func readReport(t *testing.T, path string) coverage.Report {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep coverage.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("report: %v", err)
	}
	return rep
}

// checkTenant compares a tenant's coverage with what was generated.
func checkTenant(t testing.TB, rep coverage.Report, a archivetest.Archive, hours int) {
	t.Helper()
	for _, tr := range rep.Tenants {
		if tr.TenantID != a.Tenant {
			continue
		}
		withData := len(a.Hours())
		if tr.Hours != hours || tr.HoursWithData != withData || tr.HoursWithoutData != hours-withData || tr.HoursPending != 0 {
			t.Errorf("tenant %s: %d hours, %d with data, %d without, %d pending; want %d, %d, %d, 0", a.Tenant, tr.Hours, tr.HoursWithData, tr.HoursWithoutData, tr.HoursPending, hours, withData, hours-withData)
		}
		if tr.Records != int64(a.Records) || tr.SSPRDocuments != int64(len(a.SSPRIDs)) || tr.Dropped != int64(a.Records-len(a.SSPRIDs)) || tr.DeadLettered != 0 {
			t.Errorf("tenant %s: %d records, %d SSPR, %d dropped, %d dead-lettered; want %d, %d, %d, 0", a.Tenant, tr.Records, tr.SSPRDocuments, tr.Dropped, tr.DeadLettered, a.Records, len(a.SSPRIDs), a.Records-len(a.SSPRIDs))
		}
		gapHours := 0
		for _, g := range tr.Gaps {
			gapHours += g.Hours
			for h := g.From; h.Before(g.To); h = h.Add(time.Hour) {
				if a.ByHour[h] > 0 {
					t.Errorf("tenant %s: hour %v reported as a gap holds %d records", a.Tenant, h, a.ByHour[h])
				}
			}
		}
		if gapHours != tr.HoursWithoutData {
			t.Errorf("gaps sum to %d hours, %d without data", gapHours, tr.HoursWithoutData)
		}
		return
	}
	t.Errorf("tenant %s not in the report %+v", a.Tenant, rep.Tenants)
}

// TestBackfillBlobKill9 backfills a month of generated archives (one
// tenant in the tenantId= layout, one in the resourceId= layout) into a
// real Elasticsearch 8.19 node, killing the exporter with SIGKILL at
// random moments and running it again until it finishes. Part of the
// month was already delivered by the live exporter. Every event is in the
// index exactly once, and the coverage report is exact.
func TestBackfillBlobKill9(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed))
	days := envInt(t, "SSPR_BACKFILL_DAYS", 30)
	users := envInt(t, "SSPR_BACKFILL_USERS", 1500)
	node := searchnode.Start(t, searchnode.ES8)
	srv := azurite.Start(t)
	dir := t.TempDir()
	ctx := context.Background()
	day0 := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -days-1)
	hours := days * 24
	missing := map[int]bool{}
	for range 6 {
		missing[rng.IntN(hours)] = true
	}
	a, err := archivetest.Generate(archivetest.Options{Tenant: "50a74cff-026f-4c84-aa8f-f5f8d837115f", From: day0, Hours: hours, Users: users, SSPRShare: 0.03, Seed: seed, Missing: missing, Empty: map[int]bool{5: true}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := archivetest.Generate(archivetest.Options{Tenant: "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d", Layout: archivetest.LayoutResourceID, From: day0, Hours: 72, Users: users / 4, SSPRShare: 0.05, Seed: seed + 1, CRLF: true})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := container.NewClientFromConnectionString(srv.ConnectionString(), archive.DefaultContainer, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []archivetest.Archive{a, b} {
		if err := x.Upload(ctx, cc); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("archive: %d + %d records, %d + %d SSPR events, %d + %d blobs", a.Records, b.Records, len(a.SSPRIDs), len(b.SSPRIDs), len(a.Blobs), len(b.Blobs))
	prefix := "bf-blob"
	index := prefix + "-*"
	node0 := es{t: t, url: node.URL()}
	node0.template(prefix)

	// The live exporter delivered the first two days already.
	var live bytes.Buffer
	for _, bl := range a.Blobs {
		if bl.Hour.Before(day0.Add(48 * time.Hour)) {
			live.Write(bl.Data)
		}
	}
	livePath := filepath.Join(dir, "live.json")
	if err := os.WriteFile(livePath, live.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	liveCfg := newProc(t, dir, "live", fmt.Sprintf("[input]\ntype = \"file\"\n[input.file]\npaths = [%s]\n[dead_letter]\npath = %s\n", tomlStr(livePath), tomlStr(filepath.Join(dir, "dl-live.ndjson")))+esSection(node, prefix))
	liveCfg.Start(t)
	waitFor(t, 5*time.Minute, "live run", func() string {
		if liveCfg.Exited() {
			return ""
		}
		return "running"
	}, liveCfg)
	liveCount, _ := node0.ids(index, len(a.SSPRIDs))
	if liveCount == 0 {
		t.Fatalf("the live run stored nothing:\n%s", liveCfg.LogTail(3000))
	}

	cfg := filepath.Join(dir, "backfill.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("[dead_letter]\npath = %s\n[backfill.blob]\nconnection_string = %s\nworkers = 4\n", tomlStr(filepath.Join(dir, "dl.ndjson")), tomlStr(srv.ConnectionString()))+esSection(node, prefix)), 0o600); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "report.json")
	statePath := filepath.Join(dir, "state.json")
	args := []string{"blob", "--config", cfg, "--from", day0.Format(time.DateOnly), "--to", day0.AddDate(0, 0, days-1).Format(time.DateOnly),
		"--state", statePath, "--report", report, "--progress", "log"}
	kills := killUntilDone(t, rng, filepath.Join(dir, "backfill.log"), statePath, envInt(t, "SSPR_BACKFILL_KILLS", 8), 200*time.Millisecond, 2*time.Second, nil, args...)
	t.Logf("finished after %d kills", kills)

	exactlyOnce(t, node0, index, append(slices.Clone(a.SSPRIDs), b.SSPRIDs...))
	rep := readReport(t, report)
	if !rep.Complete || len(rep.Tenants) != 2 {
		t.Fatalf("report %+v", rep)
	}
	checkTenant(t, rep, a, hours)
	checkTenant(t, rep, b, hours)
	if dl, _ := os.ReadFile(filepath.Join(dir, "dl.ndjson")); len(dl) != 0 {
		t.Errorf("dead letters: %s", tail(string(dl), 2000))
	}
	logb, _ := os.ReadFile(filepath.Join(dir, "backfill.log"))
	if strings.Contains(string(logb), "AccountKey") {
		t.Error("the connection string's key is in the log")
	}
}

var eventIDRe = regexp.MustCompile(`"id":"(SSPR_[0-9a-f-]+_[0-9]+)"`)

// TestBackfillGraphKill9 backfills 30 days of generated Graph pages from
// the Graph double (TLS, token endpoint, paging, throttling) into a real
// Elasticsearch 8.19 node, killing the exporter at random moments until a
// run finishes: every SSPR event exactly once, an exact coverage report.
func TestBackfillGraphKill9(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed^1))
	users := envInt(t, "SSPR_BACKFILL_USERS", 400)
	node := searchnode.Start(t, searchnode.ES8)
	gs := graphapi.New(t)
	gs.SetPageSize(50)
	gs.SetFilterLimit(15)
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Hour)
	from, to := now.Add(-30*24*time.Hour), now.Add(-time.Hour)
	hours := int(to.Sub(from) / time.Hour)
	a, err := archivetest.Generate(archivetest.Options{Tenant: graphapi.TenantID, From: from, Hours: hours, Users: users, SSPRShare: 0.2, Seed: seed, Missing: map[int]bool{10: true, 11: true, 300: true}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := gs.AddDiagnosticRecords(a.Lines()...)
	if err != nil {
		t.Fatal(err)
	}
	// Throttled now and then, as Graph's reporting APIs are.
	for i := range 5 {
		gs.Inject(graphapi.Fault{Status: 429, RetryAfter: "1", Path: "directoryAudits", Times: 1 + i%2})
	}
	t.Logf("Graph holds %d audit entries (sign-ins left out), %d SSPR events, over %d hours", n, len(a.SSPRIDs), hours)
	prefix := "bf-graph"
	node0 := es{t: t, url: node.URL()}
	node0.template(prefix)
	cfg := filepath.Join(dir, "backfill.toml")
	section := fmt.Sprintf(`
[dead_letter]
path = %s

[backfill.graph]
tenant_id = %s
client_id = %s
client_secret = "env:BACKFILL_TEST_GRAPH_SECRET"
authority_host = %s
disable_instance_discovery = true
endpoint = %s
ca_file = %s
request_interval = "0s"
page_size = 50
`, tomlStr(filepath.Join(dir, "dl.ndjson")), tomlStr(graphapi.TenantDomain), tomlStr(graphapi.ClientID), tomlStr(gs.URL()), tomlStr(gs.URL()), tomlStr(gs.CAFile(t, dir)))
	if err := os.WriteFile(cfg, []byte(section+esSection(node, prefix)), 0o600); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "report.json")
	statePath := filepath.Join(dir, "state.json")
	args := []string{"graph", "--config", cfg, "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339),
		"--state", statePath, "--report", report, "--progress", "log"}
	logPath := filepath.Join(dir, "backfill.log")
	// The secret comes from the environment, as a secret reference.
	env := []string{"BACKFILL_TEST_GRAPH_SECRET=" + graphapi.ClientSecret}
	kills := killUntilDone(t, rng, logPath, statePath, envInt(t, "SSPR_BACKFILL_KILLS", 8), 300*time.Millisecond, 3*time.Second, env, args...)
	t.Logf("finished after %d kills", kills)
	exactlyOnce(t, node0, prefix+"-*", a.SSPRIDs)
	rep := readReport(t, report)
	if !rep.Complete || len(rep.Tenants) != 1 || rep.Tenants[0].TenantID != graphapi.TenantID {
		t.Fatalf("report %+v", rep)
	}
	tr := rep.Tenants[0]
	// Graph returns the catalog's records only: the hours with data are
	// the hours with an SSPR event.
	withEvents := map[time.Time]bool{}
	for _, bl := range a.Blobs {
		if eventIDRe.Match(bl.Data) {
			withEvents[bl.Hour] = true
		}
	}
	if tr.Hours != hours || tr.HoursWithData != len(withEvents) || tr.SSPRDocuments != int64(len(a.SSPRIDs)) || tr.Records != int64(len(a.SSPRIDs)) || tr.HoursPending != 0 {
		t.Errorf("coverage %d hours, %d with data, %d records, %d SSPR; want %d, %d, %d, %d", tr.Hours, tr.HoursWithData, tr.Records, tr.SSPRDocuments, hours, len(withEvents), len(a.SSPRIDs), len(a.SSPRIDs))
	}
	logb, _ := os.ReadFile(logPath)
	if strings.Contains(string(logb), graphapi.ClientSecret) {
		t.Error("the client secret is in the log")
	}
}

// TestBackfillCheckersCatchWhatTheyCheck: the index and report checks
// fail on a lost event, a duplicate, a stray document, and on each wrong
// figure of a coverage report.
func TestBackfillCheckersCatchWhatTheyCheck(t *testing.T) {
	ids := []string{"a", "b", "c"}
	for name, c := range map[string]struct {
		count int
		got   map[string]int
	}{
		"lost":      {2, map[string]int{"a": 1, "b": 1}},
		"duplicate": {4, map[string]int{"a": 2, "b": 1, "c": 1}},
		"stray":     {4, map[string]int{"a": 1, "b": 1, "c": 1, "x": 1}},
	} {
		r := &recorder{TB: t}
		checkOnce(r, c.count, c.got, ids)
		if len(r.errs) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
	ok := &recorder{TB: t}
	checkOnce(ok, 3, map[string]int{"a": 1, "b": 1, "c": 1}, ids)
	if len(ok.errs) != 0 {
		t.Errorf("exactly once: %v", ok.errs)
	}

	h0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	a := archivetest.Archive{Tenant: "t", Records: 10, SSPRIDs: []string{"a", "b"}, ByHour: map[time.Time]int{h0: 10, h0.Add(time.Hour): 0}}
	good := coverage.Tenant{TenantID: "t", Hours: 3, HoursWithData: 1, HoursWithoutData: 2, Records: 10, SSPRDocuments: 2, Dropped: 8,
		Gaps: []coverage.Gap{{From: h0.Add(time.Hour), To: h0.Add(3 * time.Hour), Hours: 2}}}
	r := &recorder{TB: t}
	checkTenant(r, coverage.Report{Tenants: []coverage.Tenant{good}}, a, 3)
	if len(r.errs) != 0 {
		t.Errorf("a right report: %v", r.errs)
	}
	for name, change := range map[string]func(*coverage.Tenant){
		"hours with data": func(c *coverage.Tenant) { c.HoursWithData, c.HoursWithoutData = 2, 1 },
		"records":         func(c *coverage.Tenant) { c.Records = 9 },
		"sspr":            func(c *coverage.Tenant) { c.SSPRDocuments = 3 },
		"gap over data":   func(c *coverage.Tenant) { c.Gaps = []coverage.Gap{{From: h0, To: h0.Add(2 * time.Hour), Hours: 2}} },
		"pending":         func(c *coverage.Tenant) { c.HoursPending = 1 },
		"other tenant":    func(c *coverage.Tenant) { c.TenantID = "u" },
	} {
		bad := good
		change(&bad)
		r := &recorder{TB: t}
		checkTenant(r, coverage.Report{Tenants: []coverage.Tenant{bad}}, a, 3)
		if len(r.errs) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
}
