package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/sspr-exporter/sspr-exporter/internal/backfill"
	"github.com/sspr-exporter/sspr-exporter/internal/backfill/state"
	"github.com/sspr-exporter/sspr-exporter/internal/entra"
	"github.com/sspr-exporter/sspr-exporter/internal/pipeline"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/source/archive/archivetest"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/azurite"
)

const (
	tenantA = "50a74cff-026f-4c84-aa8f-f5f8d837115f"
	tenantB = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
)

var day0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func storage(t *testing.T) (*azurite.Server, string) {
	t.Helper()
	srv := azurite.Start(t)
	name := strings.ToLower(regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-"))
	name = strings.Trim(name, "-")
	if len(name) > 40 {
		name = name[:40]
	}
	return srv, strings.Trim(name, "-")
}

func containerClient(t *testing.T, srv *azurite.Server, name string) *container.Client {
	t.Helper()
	cc, err := container.NewClientFromConnectionString(srv.ConnectionString(), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

func config(srv *azurite.Server, name string) Config {
	c := DefaultConfig()
	c.ConnectionString = secret.New(srv.ConnectionString())
	c.Container = name
	return c
}

// collect is a feed that keeps copies of what it gets.
type collect struct {
	mu      sync.Mutex
	units   map[string]backfill.Unit
	done    map[string]bool
	bodies  map[string][]stream.Body
	ends    map[string][]backfill.Resume
	finals  map[string]int
	tenants []string
	planned bool
}

func newCollect() *collect {
	return &collect{units: map[string]backfill.Unit{}, done: map[string]bool{}, bodies: map[string][]stream.Body{}, ends: map[string][]backfill.Resume{}, finals: map[string]int{}}
}

func (c *collect) Begin(u backfill.Unit) (backfill.Resume, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.units[u.Key] = u
	return backfill.Resume{}, !c.done[u.Key]
}

func (c *collect) Emit(_ context.Context, ch backfill.Chunk) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range ch.Bodies {
		b.Data = bytes.Clone(b.Data)
		c.bodies[ch.Unit] = append(c.bodies[ch.Unit], b)
	}
	if ch.End != nil {
		c.ends[ch.Unit] = append(c.ends[ch.Unit], *ch.End)
	}
	if ch.Final {
		c.finals[ch.Unit]++
	}
	if ch.Release != nil {
		ch.Release()
	}
	return nil
}

func (c *collect) Tenant(id string) { c.tenants = append(c.tenants, id) }
func (c *collect) Planned()         { c.planned = true }

var idRE = regexp.MustCompile(`"id":"(SSPR_[0-9a-f-]+_[0-9]+)"`)

// TestReadsTheRangeOfBothLayouts: the blobs of the range's hours in both
// layouts, each whole, one body per record with its line, the tenants
// found, nothing outside the range.
func TestReadsTheRangeOfBothLayouts(t *testing.T) {
	srv, name := storage(t)
	cc := containerClient(t, srv, name)
	readBothLayouts(t, srv.ConnectionString(), name, func(x archivetest.Archive) error { return x.Upload(context.Background(), cc) })
}

// TestBlobDoubleAnswersAsTheService: the in-memory Blob double the
// benchmarks read from gives the reader what Azurite gives it.
func TestBlobDoubleAnswersAsTheService(t *testing.T) {
	d := archivetest.NewServer(t)
	readBothLayouts(t, d.ConnectionString(), "insights-logs-auditlogs", func(x archivetest.Archive) error {
		d.Put("insights-logs-auditlogs", x)
		return nil
	})
}

func readBothLayouts(t *testing.T, conn, name string, upload func(archivetest.Archive) error) {
	t.Helper()
	ctx := context.Background()
	a, err := archivetest.Generate(archivetest.Options{Tenant: tenantA, From: day0, Hours: 48, Users: 300, SSPRShare: 0.05, Seed: 1, Missing: map[int]bool{3: true}, Empty: map[int]bool{4: true}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := archivetest.Generate(archivetest.Options{Tenant: tenantB, Layout: archivetest.LayoutResourceID, From: day0, Hours: 30, Users: 100, SSPRShare: 0.05, Seed: 2, CRLF: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []archivetest.Archive{a, b} {
		if err := upload(x); err != nil {
			t.Fatal(err)
		}
	}
	rng := backfill.Range{From: day0.Add(2 * time.Hour), To: day0.Add(26 * time.Hour)}
	cfg := DefaultConfig()
	cfg.ConnectionString, cfg.Container = secret.New(conn), name
	r, err := New(cfg, Options{Range: rng, ChunkBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	f := newCollect()
	if err := r.Read(ctx, f); err != nil {
		t.Fatal(err)
	}
	sort.Strings(f.tenants)
	if !f.planned || !slices.Equal(f.tenants, []string{tenantB, tenantA}) {
		t.Errorf("planned %v, tenants %v", f.planned, f.tenants)
	}
	want := map[string]archivetest.Blob{}
	for _, x := range []archivetest.Archive{a, b} {
		for _, bl := range x.Blobs {
			if !bl.Hour.Before(rng.From) && bl.Hour.Before(rng.To) {
				want[bl.Name] = bl
			}
		}
	}
	if len(f.units) != len(want) {
		t.Errorf("%d units, want %d", len(f.units), len(want))
	}
	for name, bl := range want {
		u, ok := f.units[name]
		if !ok {
			t.Errorf("blob %s not read", name)
			continue
		}
		if !u.From.Equal(bl.Hour) || u.Size != int64(len(bl.Data)) || u.Version == "" {
			t.Errorf("unit %+v, want hour %v size %d", u, bl.Hour, len(bl.Data))
		}
		if strings.HasPrefix(name, "tenantId=") != (u.Tenant == tenantA) {
			t.Errorf("%s: tenant %s", name, u.Tenant)
		}
		bodies := f.bodies[name]
		if len(bodies) != bl.Records {
			t.Errorf("%s: %d bodies, want %d records", name, len(bodies), bl.Records)
		}
		for i, body := range bodies {
			if body.Form != stream.FormRecord || body.Err != nil || body.Pos.Line != int64(i+1) || body.Pos.File != r.cfg.Container+"/"+name || body.Pos.Kind != "blob" {
				t.Errorf("%s body %d: %+v", name, i, body.Pos)
				break
			}
		}
		ends := f.ends[name]
		if f.finals[name] != 1 || len(ends) == 0 || ends[len(ends)-1].Offset != int64(len(bl.Data)) || ends[len(ends)-1].Line != int64(bl.Records) {
			t.Errorf("%s: ends %v finals %d, want the last at line %d byte %d", name, ends, f.finals[name], bl.Records, len(bl.Data))
		}
		for i := 1; i < len(ends); i++ {
			if ends[i].Offset <= ends[i-1].Offset {
				t.Errorf("%s: ends not increasing: %v", name, ends)
			}
		}
	}
}

// TestLinesOfEveryKind: a byte-order mark and CR LF, blank lines, an
// envelope on a line, a line cut short, a line longer than the limit and
// a last line without its line end each end as records or one dead
// letter at their line; reading resumes at a checkpoint's byte and line.
func TestLinesOfEveryKind(t *testing.T) {
	srv, name := storage(t)
	cc := containerClient(t, srv, name)
	ctx := context.Background()
	rec := func(id string) string {
		return `{"time":"2026-11-01T05:00:00Z","category":"AuditLogs","tenantId":"` + tenantA + `","properties":{"id":"` + id + `","activityDisplayName":"Reset password (self-service)","activityDateTime":"2026-11-01T05:00:00Z","loggedByService":"Self-service Password Management","result":"success"}}`
	}
	long := `{"time":"2026-11-01T05:00:00Z","padding":"` + strings.Repeat("x", 5000) + `"}`
	content := "\uFEFF" + rec("r1") + "\r\n" +
		"\r\n" +
		`{"records":[` + rec("r3a") + "," + rec("r3b") + "]}\n" +
		`{"time":"2026-11-01T05:00:0` + "\n" +
		long + "\n" +
		rec("r6")
	blobName := archivetest.Name(archivetest.LayoutTenantID, tenantA, day0.Add(5*time.Hour))
	if _, err := cc.Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := archivetest.Append(ctx, cc, blobName, []byte(content), true); err != nil {
		t.Fatal(err)
	}
	r, err := New(config(srv, name), Options{Range: backfill.Range{From: day0, To: day0.Add(24 * time.Hour)}, MaxBodyBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	f := newCollect()
	if err := r.Read(ctx, f); err != nil {
		t.Fatal(err)
	}
	type got struct {
		line int64
		form stream.Form
		kind string
	}
	var gs []got
	for _, b := range f.bodies[blobName] {
		k := "record"
		var tl *entra.TooLargeError
		switch {
		case errors.As(b.Err, &tl):
			k = "too large"
			if tl.Size != int64(len(long)+1) {
				t.Errorf("oversize line of %d bytes reported as %d", len(long)+1, tl.Size)
			}
		case b.Err != nil:
			k = "invalid"
		}
		gs = append(gs, got{b.Pos.Line, b.Form, k})
	}
	want := []got{{1, stream.FormRecord, "record"}, {3, stream.FormRecord, "record"}, {3, stream.FormRecord, "record"}, {4, 0, "invalid"}, {5, 0, "too large"}, {6, stream.FormRecord, "record"}}
	if !slices.Equal(gs, want) {
		t.Errorf("bodies\n%v, want\n%v", gs, want)
	}
	ends := f.ends[blobName]
	if last := ends[len(ends)-1]; last.Offset != int64(len(content)) || last.Line != 6 {
		t.Errorf("end %+v, want line 6 byte %d", last, len(content))
	}

	// From a checkpoint after line 3.
	off := int64(strings.Index(content, `{"time":"2026-11-01T05:00:0`+"\n"))
	u := f.units[blobName]
	f2 := newCollect()
	j := job{unit: u, resume: backfill.Resume{Line: 3, Offset: off}}
	f2.units[blobName] = u
	if err := r.readBlob(ctx, f2, j); err != nil {
		t.Fatal(err)
	}
	var lines []int64
	for _, b := range f2.bodies[blobName] {
		lines = append(lines, b.Pos.Line)
	}
	if !slices.Equal(lines, []int64{4, 5, 6}) {
		t.Errorf("resumed at line 3: bodies of lines %v, want 4, 5, 6", lines)
	}
}

// pipelineLoop plays the pipeline: it reads the tracker's batches and
// acknowledges them, in order, until EOF or until stop says so; it
// returns the SSPR ids delivered.
func pipelineLoop(t *testing.T, tr *backfill.Tracker, dec pipeline.Decoder, stop func(batches int) bool) []string {
	t.Helper()
	var ids []string
	for n := 0; ; n++ {
		if stop != nil && stop(n) {
			return ids
		}
		b, err := tr.Read(context.Background())
		if err != nil {
			return ids
		}
		for _, d := range dec.Decode(b.Bodies).Docs {
			ids = append(ids, d.Event.ID)
		}
		_ = b.Ack(context.Background(), nil)
	}
}

func catalogDecoder(t *testing.T) pipeline.Decoder {
	cat, err := sspr.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Decoder{Catalog: cat, Now: time.Now}
}

// TestStopResumeAndChange: a backfill stopped midway and run again
// delivers every event, skips what was checkpointed, reads a blob whose
// content changed since again from its start, and ends with exact counts.
func TestStopResumeAndChange(t *testing.T) {
	srv, name := storage(t)
	cc := containerClient(t, srv, name)
	ctx := context.Background()
	a, err := archivetest.Generate(archivetest.Options{Tenant: tenantA, From: day0, Hours: 12, Users: 500, SSPRShare: 0.05, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Upload(ctx, cc); err != nil {
		t.Fatal(err)
	}
	rng := backfill.Range{From: day0, To: day0.Add(12 * time.Hour)}
	path := filepath.Join(t.TempDir(), "state.json")
	dec := catalogDecoder(t)
	run := func(stop func(int) bool) (*backfill.Tracker, []string) {
		st, err := state.Open(path, "blob", "test")
		if err != nil {
			t.Fatal(err)
		}
		r, err := New(config(srv, name), Options{Range: rng, ChunkBytes: 32 << 10})
		if err != nil {
			t.Fatal(err)
		}
		tr := backfill.NewTracker(r, backfill.Options{Store: st, Decoder: dec, BatchBodies: 5, Queue: 2, SaveInterval: time.Millisecond})
		ids := pipelineLoop(t, tr, dec, stop)
		if err := tr.Close(ctx); err != nil {
			t.Fatal(err)
		}
		return tr, ids
	}
	_, first := run(func(n int) bool { return n == 6 })
	if len(first) == 0 {
		t.Fatal("nothing delivered before the stop")
	}
	// The first blob changes: diagnostic settings append to it.
	extra, err := archivetest.Generate(archivetest.Options{Tenant: tenantA, From: day0, Hours: 1, Users: 500, SSPRShare: 0.5, Seed: 99})
	if err != nil {
		t.Fatal(err)
	}
	if err := archivetest.Append(ctx, cc, a.Blobs[0].Name, extra.Blobs[0].Data, false); err != nil {
		t.Fatal(err)
	}
	tr, second := run(nil)
	all := map[string]int{}
	for _, id := range append(first, second...) {
		all[id]++
	}
	wantIDs := append(slices.Clone(a.SSPRIDs), extra.SSPRIDs...)
	for _, id := range wantIDs {
		if all[id] == 0 {
			t.Fatalf("event %s lost", id)
		}
	}
	if len(second) >= len(wantIDs) {
		t.Errorf("the second run delivered %d of %d events: it did not resume", len(second), len(wantIDs))
	}
	// The changed blob is read again from its start: what the first run
	// delivered of it comes again.
	again, before := 0, 0
	inSecond := map[string]bool{}
	for _, id := range second {
		inSecond[id] = true
	}
	for _, m := range idRE.FindAllSubmatch(a.Blobs[0].Data, -1) {
		if slices.Contains(first, string(m[1])) {
			before++
			if inSecond[string(m[1])] {
				again++
			}
		}
	}
	if before == 0 || again != before {
		t.Errorf("of the changed blob's %d events delivered before the change, %d came again", before, again)
	}
	rep := tr.Coverage("blob", rng)
	if !rep.Complete || len(rep.Tenants) != 1 {
		t.Fatalf("report %+v", rep)
	}
	c := rep.Tenants[0]
	if c.Records != int64(a.Records+extra.Records) || c.SSPRDocuments != int64(len(wantIDs)) || c.HoursWithData != 12 {
		t.Errorf("coverage %+v, want %d records, %d events, 12 hours", c, a.Records+extra.Records, len(wantIDs))
	}
	js, _ := json.Marshal(rep)
	if strings.Contains(string(js), srv.ConnectionString()) {
		t.Error("report holds the connection string")
	}
}

func TestTenantOf(t *testing.T) {
	for base, want := range map[string]string{
		"tenantId=" + tenantA + "/": tenantA,
		"resourceId=/tenants/" + strings.ToUpper(tenantB) + "/providers/Microsoft.aadiam/": tenantB,
		"resourceId=/SUBSCRIPTIONS/x/": "",
		"":                             "",
	} {
		if got := tenantOf(base); got != want {
			t.Errorf("%q: %q, want %q", base, got, want)
		}
	}
}
