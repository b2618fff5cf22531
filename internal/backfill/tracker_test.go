package backfill

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/backfill/state"
	"github.com/sspr-exporter/sspr-exporter/internal/entra"
	"github.com/sspr-exporter/sspr-exporter/internal/gen"
	"github.com/sspr-exporter/sspr-exporter/internal/pipeline"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/testdata"
)

func decoder(t testing.TB) pipeline.Decoder {
	t.Helper()
	cat, err := sspr.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Decoder{Catalog: cat, Now: func() time.Time { return time.Unix(0, 0) }}
}

// bodiesOf splits input into the bodies a line reader hands out: each
// line's records, or the line's failure.
func bodiesOf(input []byte, file string) []stream.Body {
	var out []stream.Body
	line := int64(0)
	for l := range bytes.Lines(input) {
		line++
		sc := entra.NewBytesScanner(l, 0)
		for {
			v, err := sc.Next()
			if err != nil {
				break
			}
			pos := stream.Position{Kind: "blob", File: file, Line: line}
			if v.Err != nil {
				out = append(out, stream.Body{Data: bytes.Clone(v.Data), Pos: pos, Err: v.Err})
				continue
			}
			_ = v.Records(func(r entra.RawRecord) error {
				out = append(out, stream.Body{Data: bytes.Clone(r.Data), Pos: pos, Err: r.Err, Form: stream.FormRecord})
				return nil
			})
		}
	}
	return out
}

// mixed is SSPR records, other audit and sign-in records, a broken line,
// an empty array in an envelope and an SSPR record without a time.
func mixed(t testing.TB) []byte {
	t.Helper()
	archive, err := os.ReadFile(filepath.Join(testdata.Project(t), "sspr", "storage-archive-PT1H.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g bytes.Buffer
	if _, err := gen.Write(&g, gen.Options{Records: 300, PerBody: 1, SSPRShare: 0.1, Seed: 7}, false); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.Write(archive)
	b.WriteString("\n{\"broken\": \n")
	b.WriteString("{\"records\":[[]]}\n")
	b.WriteString(`{"category":"AuditLogs","properties":{"id":"x","activityDisplayName":"Reset password (self-service)","loggedByService":"Self-service Password Management"}}` + "\n")
	b.Write(g.Bytes())
	return b.Bytes()
}

type fakeReader struct {
	units  []Unit
	chunks map[string][]Chunk
	err    error
}

func (r *fakeReader) Read(ctx context.Context, feed Feed) error {
	for _, u := range r.units {
		res, ok := feed.Begin(u)
		if !ok {
			continue
		}
		for _, c := range r.chunks[u.Key] {
			if c.End != nil && c.End.Line <= res.Line {
				continue
			}
			if err := feed.Emit(ctx, c); err != nil {
				return err
			}
		}
	}
	feed.Planned()
	return r.err
}

func newStore(t *testing.T) *state.Store {
	t.Helper()
	s, err := state.Open(filepath.Join(t.TempDir(), "state.json"), "blob", "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func unitOf(st *state.Store, key string) state.Unit {
	var u state.Unit
	st.View(func(f *state.File) {
		if p := f.Units[key]; p != nil {
			u = *p
		}
	})
	return u
}

var hour0 = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

// TestCountsAsTheDecoderCounts: what the tracker counts, and what it
// hands the pipeline, is what the decoder makes of the whole chunk: the
// same documents, dead letters and counts; the rest are drops.
func TestCountsAsTheDecoderCounts(t *testing.T) {
	dec := decoder(t)
	bodies := bodiesOf(mixed(t), "c/b")
	want := dec.Decode(slices.Clone(bodies))

	st := newStore(t)
	u := Unit{Key: "b", Tenant: "t", From: hour0, To: hour0.Add(time.Hour), Version: "v1"}
	r := &fakeReader{units: []Unit{u}, chunks: map[string][]Chunk{"b": {{Unit: "b", Bodies: bodies, End: &Resume{Line: 9, Offset: 99}, Final: true}}}}
	tr := NewTracker(r, Options{Store: st, Decoder: dec})
	var handed []stream.Body
	for {
		b, err := tr.Read(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		handed = append(handed, b.Bodies...)
		_ = b.Ack(context.Background(), nil)
	}
	if err := tr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := dec.Decode(handed)
	if len(got.Docs) != len(want.Docs) || len(got.DeadLetters) != len(want.DeadLetters) {
		t.Fatalf("pipeline gets %d docs and %d dead letters, the whole chunk gives %d and %d", len(got.Docs), len(got.DeadLetters), len(want.Docs), len(want.DeadLetters))
	}
	for i := range got.Docs {
		if got.Docs[i].Event.ID != want.Docs[i].Event.ID {
			t.Errorf("doc %d: %s, want %s", i, got.Docs[i].Event.ID, want.Docs[i].Event.ID)
		}
	}
	if len(handed) >= len(bodies)/2 {
		t.Errorf("%d of %d bodies handed to the pipeline: the non-SSPR ones should stay out", len(handed), len(bodies))
	}
	c := unitOf(st, "b")
	if !c.Done || c.Line != 9 || c.Offset != 99 {
		t.Errorf("checkpoint %+v, want done at line 9, byte 99", c)
	}
	w := state.Counts{Records: want.Counts.Records, SSPR: want.Counts.SSPR, Dropped: want.Counts.Dropped, Unsupported: want.Counts.Unsupported, DeadLettered: int64(len(want.DeadLetters))}
	gc := c.Counts
	gc.First, gc.Last = time.Time{}, time.Time{}
	if gc != w {
		t.Errorf("counts %+v, want %+v", gc, w)
	}
	if want.Counts.SSPR == 0 || want.Counts.Dropped == 0 || len(want.DeadLetters) < 2 {
		t.Fatalf("test input too narrow: %+v, %d dead letters", want.Counts, len(want.DeadLetters))
	}
	first, last := want.Docs[0].Time, want.Docs[0].Time
	for _, d := range want.Docs {
		if d.Time.Before(first) {
			first = d.Time
		}
		if d.Time.After(last) {
			last = d.Time
		}
	}
	if !c.Counts.First.Equal(first) || !c.Counts.Last.Equal(last) {
		t.Errorf("first/last %v %v, want %v %v", c.Counts.First, c.Counts.Last, first, last)
	}
	if c.Hours[hour0] != want.Counts.Records {
		t.Errorf("hours %v, want %d records in %v", c.Hours, want.Counts.Records, hour0)
	}
}

// sspr3 is three chunks of one unit, each with one SSPR record.
func sspr3(t *testing.T) []Chunk {
	t.Helper()
	bodies := bodiesOf(mixed(t), "c/b")
	dec := decoder(t)
	var picked []stream.Body
	for _, b := range bodies {
		if b.Form == stream.FormRecord && len(dec.Decode([]stream.Body{b}).Docs) == 1 {
			picked = append(picked, b)
		}
	}
	var cs []Chunk
	for i := range 3 {
		cs = append(cs, Chunk{Unit: "b", Bodies: picked[i : i+1], End: &Resume{Line: int64(i + 1), Offset: int64(100 * (i + 1))}, Final: i == 2})
	}
	return cs
}

// TestCheckpointIsTheContiguousAcknowledgedPrefix: acknowledgements out
// of order move the checkpoint only over chunks with nothing missing
// before them; a failed batch holds it.
func TestCheckpointIsTheContiguousAcknowledgedPrefix(t *testing.T) {
	st := newStore(t)
	u := Unit{Key: "b", Tenant: "t", From: hour0, To: hour0.Add(time.Hour), Version: "v1"}
	r := &fakeReader{units: []Unit{u}, chunks: map[string][]Chunk{"b": sspr3(t)}}
	tr := NewTracker(r, Options{Store: st, Decoder: decoder(t), BatchBodies: 1})
	defer tr.Close(context.Background())
	var batches []stream.Batch
	for range 3 {
		b, err := tr.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, b)
	}
	check := func(step string, line int64, done bool) {
		t.Helper()
		c := unitOf(st, "b")
		if c.Line != line || c.Done != done {
			t.Errorf("%s: checkpoint at line %d done %v, want line %d done %v", step, c.Line, c.Done, line, done)
		}
	}
	_ = batches[2].Ack(context.Background(), nil)
	check("third acked", 0, false)
	_ = batches[1].Ack(context.Background(), errors.New("sink down"))
	check("second failed", 0, false)
	_ = batches[0].Ack(context.Background(), nil)
	check("first acked", 1, false)
	if c := unitOf(st, "b"); c.Counts.SSPR != 1 {
		t.Errorf("counts %+v, want only the first chunk's event", c.Counts)
	}
}

// TestResumeAndVersion: a complete unit is skipped, a partial one resumes
// where it was checkpointed, one whose content changed starts over with
// its counts reset.
func TestResumeAndVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	st, err := state.Open(path, "blob", "test")
	if err != nil {
		t.Fatal(err)
	}
	mk := func(key, version string) Unit {
		return Unit{Key: key, Tenant: "t", From: hour0, To: hour0.Add(time.Hour), Version: version}
	}
	st.Update(func(f *state.File) {
		f.Units["done"] = &state.Unit{Tenant: "t", From: hour0, To: hour0.Add(time.Hour), Version: "v1", Done: true, Counts: state.Counts{Records: 5}}
		f.Units["partial"] = &state.Unit{Tenant: "t", From: hour0, To: hour0.Add(time.Hour), Version: "v1", Line: 7, Offset: 700, Counts: state.Counts{Records: 7}}
		f.Units["changed"] = &state.Unit{Tenant: "t", From: hour0, To: hour0.Add(time.Hour), Version: "v1", Line: 3, Offset: 300, Counts: state.Counts{Records: 3}}
	})
	if err := st.Save(); err != nil {
		t.Fatal(err)
	}
	st, err = state.Open(path, "blob", "test")
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTracker(&fakeReader{}, Options{Store: st, Decoder: decoder(t)})
	if _, ok := tr.Begin(mk("done", "v1")); ok {
		t.Error("a complete unit is read again")
	}
	if res, ok := tr.Begin(mk("partial", "v1")); !ok || res != (Resume{Line: 7, Offset: 700}) {
		t.Errorf("partial: %+v %v, want to resume at line 7, byte 700", res, ok)
	}
	if res, ok := tr.Begin(mk("changed", "v2")); !ok || res != (Resume{}) {
		t.Errorf("changed: %+v %v, want to start over", res, ok)
	}
	if c := unitOf(st, "changed"); c.Counts.Records != 0 || c.Version != "v2" || c.Line != 0 {
		t.Errorf("changed unit keeps %+v", c)
	}
	if c := unitOf(st, "partial"); c.Counts.Records != 7 {
		t.Errorf("partial unit lost its counts: %+v", c)
	}
	if err := tr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestStaleChunksIgnored: a unit begun again (its blob changed while it
// was read) does not take the acknowledgements of the old content.
func TestStaleChunksIgnored(t *testing.T) {
	st := newStore(t)
	u := Unit{Key: "b", Tenant: "t", From: hour0, To: hour0.Add(time.Hour), Version: "v1"}
	cs := sspr3(t)
	r := &fakeReader{units: []Unit{u}, chunks: map[string][]Chunk{"b": cs[:1]}}
	tr := NewTracker(r, Options{Store: st, Decoder: decoder(t)})
	defer tr.Close(context.Background())
	b, err := tr.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u.Version = "v2"
	tr.Begin(u)
	_ = b.Ack(context.Background(), nil)
	if c := unitOf(st, "b"); c.Line != 0 || c.Counts.Records != 0 {
		t.Errorf("old content's chunk moved the new content's checkpoint: %+v", c)
	}
}

// TestReaderErrorEndsTheSource: the reader's failure is the source's,
// after what it emitted before.
func TestReaderErrorEndsTheSource(t *testing.T) {
	st := newStore(t)
	u := Unit{Key: "b", Tenant: "t", From: hour0, To: hour0.Add(time.Hour), Version: "v1"}
	boom := errors.New("graph: HTTP 403")
	r := &fakeReader{units: []Unit{u}, chunks: map[string][]Chunk{"b": sspr3(t)[:1]}, err: boom}
	tr := NewTracker(r, Options{Store: st, Decoder: decoder(t)})
	defer tr.Close(context.Background())
	if b, err := tr.Read(context.Background()); err != nil || len(b.Bodies) != 1 {
		t.Fatalf("first read: %v, %d bodies", err, len(b.Bodies))
	}
	if _, err := tr.Read(context.Background()); !errors.Is(err, boom) {
		t.Errorf("second read: %v, want the reader's error", err)
	}
}

// TestCoverageOfTheRun: the tracker's report covers the units it was
// given, with their tenants.
func TestCoverageOfTheRun(t *testing.T) {
	st := newStore(t)
	rng := Range{From: hour0, To: hour0.Add(3 * time.Hour)}
	var units []Unit
	chunks := map[string][]Chunk{}
	for i, key := range []string{"h0", "h2"} {
		h := hour0.Add(time.Duration(2*i) * time.Hour)
		units = append(units, Unit{Key: key, Tenant: "t1", From: h, To: h.Add(time.Hour), Version: "v"})
		cs := sspr3(t)[:1]
		cs[0].Unit, cs[0].Final = key, true
		chunks[key] = cs
	}
	tr := NewTracker(&fakeReader{units: units, chunks: chunks}, Options{Store: st, Decoder: decoder(t)})
	tr.Tenant("t2")
	for {
		b, err := tr.Read(context.Background())
		if err != nil {
			break
		}
		_ = b.Ack(context.Background(), nil)
	}
	rep := tr.Coverage("blob", rng)
	if !rep.Complete || len(rep.Tenants) != 2 {
		t.Fatalf("report %+v", rep)
	}
	t1, t2 := rep.Tenants[0], rep.Tenants[1]
	if t1.HoursWithData != 2 || t1.HoursWithoutData != 1 || len(t1.Gaps) != 1 || !t1.Gaps[0].From.Equal(hour0.Add(time.Hour)) {
		t.Errorf("t1: %+v", t1)
	}
	if t2.HoursWithoutData != 3 || t2.Records != 0 {
		t.Errorf("t2 (no input): %+v", t2)
	}
}
