package file

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/gen"
	"github.com/sspr-exporter/sspr-exporter/internal/pipeline"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// cutLine is an Event Hubs body cut short between two members, so that
// the lines after it could continue it as far as structure goes.
const cutLine = `{"records":[{"time":"2026-11-01T00:00:00Z","properties":{"id":"x","targetResources":[`

// goodLines writes n one-record bodies.
func goodLines(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{\"records\":[{\"n\":%d,\"pad\":\"%s\"}]}\n", i, strings.Repeat("p", 40))
	}
	return b.String()
}

// checkCutThenGood checks the bodies of a cut line followed by n good lines.
func checkCutThenGood(t *testing.T, got []stream.Body, n int) {
	t.Helper()
	if len(got) != n+1 {
		t.Fatalf("%d bodies, want the cut line and %d records", len(got), n)
	}
	if got[0].Err == nil || string(got[0].Data) != cutLine || got[0].Pos.Line != 1 {
		t.Errorf("first body %q line %d err %v, want the cut line failed", got[0].Data, got[0].Pos.Line, got[0].Err)
	}
	for i, b := range got[1:] {
		want := fmt.Sprintf(`{"n":%d,`, i)
		if b.Err != nil || !bytes.HasPrefix(b.Data, []byte(want)) || b.Pos.Line != int64(i+2) {
			t.Fatalf("body %d = %q line %d err %v, want record %s at line %d", i+1, b.Data, b.Pos.Line, b.Err, want, i+2)
		}
	}
}

// readPath reads the file at path through a source. Following, the file
// has no end: reading stops after n bodies.
func readPath(t *testing.T, path string, follow bool, max, n int) []stream.Body {
	t.Helper()
	s, err := openStarted(Options{Paths: []string{path}, Follow: follow, PollInterval: 5 * time.Millisecond, MaxBodyBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if !follow {
		n = -1
	}
	return readAll(t, s, n)
}

// TestCutLineThenMoreThanMax: a cut line followed by more than
// max_body_bytes of good lines; the cut line alone fails.
func TestCutLineThenMoreThanMax(t *testing.T) {
	const n, max = 500, 4096
	path := filepath.Join(t.TempDir(), "in.json")
	in := cutLine + "\n" + goodLines(n)
	if len(in) < 4*max {
		t.Fatal("input too small for the test")
	}
	if err := os.WriteFile(path, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, follow := range []bool{false, true} {
		t.Run(fmt.Sprintf("follow=%v", follow), func(t *testing.T) {
			checkCutThenGood(t, readPath(t, path, follow, max, n+1), n)
		})
	}
}

// TestFollowCutLine: when following, a cut line does not hold back what
// comes after it, whether the file already holds it or grows later.
func TestFollowCutLine(t *testing.T) {
	type write struct {
		data   string
		bodies int // bodies that must come out after this write
	}
	rest := goodLines(3)[len(goodLines(1)):]
	for _, tc := range []struct {
		name   string
		writes []write
		good   int
	}{
		{"98 good lines after it", []write{{cutLine + "\n" + goodLines(98), 99}}, 98},
		{"one good line after it", []write{{cutLine + "\n" + goodLines(1), 2}}, 1},
		{"good lines appended later", []write{{cutLine + "\n", 0}, {goodLines(1), 2}, {rest, 2}}, 3},
		{"written in pieces", []write{{cutLine[:20], 0}, {cutLine[20:] + "\n{\"records\":[{\"n\":0,", 0}, {goodLines(1)[len(`{"records":[{"n":0,`):], 2}}, 1},
		{"empty file, then a cut line and good ones", []write{{"", 0}, {cutLine + "\n" + goodLines(2), 3}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "PT1H.json")
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := openStarted(Options{Paths: []string{path}, Follow: true, PollInterval: 5 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var got []stream.Body
			for _, w := range tc.writes {
				if _, err := f.WriteString(w.data); err != nil {
					t.Fatal(err)
				}
				if w.bodies > 0 {
					got = append(got, readAll(t, s, w.bodies)...)
				}
			}
			checkCutThenGood(t, got, tc.good)
		})
	}
}

// TestReplayGeneratorPoison reads the generator's stream with cut bodies
// through the file source and the decoder: each cut body is one dead
// letter and every SSPR event of the good bodies becomes a document.
func TestReplayGeneratorPoison(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stream.ndjson")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := gen.Write(f, gen.Options{Records: 20000, PerBody: 100, SSPRShare: 0.05, Seed: 5, PoisonEvery: 9}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cat, err := sspr.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	const max = 1 << 20 // a few bodies: a cut one must not swallow the next
	for _, follow := range []bool{false, true} {
		t.Run(fmt.Sprintf("follow=%v", follow), func(t *testing.T) {
			bodies := readPath(t, path, follow, max, st.Records+st.Poison)
			d := pipeline.Decoder{MaxBodyBytes: max, Catalog: cat, Now: time.Now}
			res := d.Decode(bodies)
			if int(res.Counts.SSPR) != st.SSPR || len(res.Docs) != st.SSPR || len(res.DeadLetters) != st.Poison {
				t.Errorf("%d SSPR documents, %d dead letters; the generator wrote %d SSPR events and %d cut bodies",
					len(res.Docs), len(res.DeadLetters), st.SSPR, st.Poison)
			}
			for action, n := range st.ByAction {
				if got := res.Counts.ByAction[action]; got != int64(n) {
					t.Errorf("action %s: %d documents, want %d", action, got, n)
				}
			}
		})
	}
}
