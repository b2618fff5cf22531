package file

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// openStarted opens a source and starts it.
func openStarted(opts Options) (*Source, error) {
	s, err := Open(opts)
	if err != nil {
		return nil, err
	}
	return s, s.Start(context.Background())
}

func readAll(t *testing.T, s *Source, n int) []stream.Body {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []stream.Body
	for n < 0 || len(out) < n {
		b, err := s.Read(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Read: %v (have %d bodies)", err, len(out))
		}
		// Bodies must not be used after their batch is acknowledged (the
		// source recycles the memory): keep copies.
		for _, body := range b.Bodies {
			body.Data = bytes.Clone(body.Data)
			out = append(out, body)
		}
		if b.Ack != nil {
			if err := b.Ack(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

func TestRecordsInOrderWithPositions(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.json")
	b := filepath.Join(dir, "b.json")
	os.WriteFile(a, []byte("{\"records\":[{\"n\":1},\n{\"n\":2}]}\nbroken\n"), 0o644)
	os.WriteFile(b, []byte("\xEF\xBB\xBF{\"n\":3}\r\n{\"n\":4}\r\n"), 0o644)
	s, err := openStarted(Options{Paths: []string{filepath.Join(dir, "*.json")}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	got := readAll(t, s, -1)
	want := []struct {
		data, file string
		line       int64
		err        bool
	}{
		{`{"n":1}`, a, 1, false}, {`{"n":2}`, a, 2, false}, {`broken`, a, 3, true},
		{`{"n":3}`, b, 1, false}, {`{"n":4}`, b, 2, false},
	}
	if len(got) != len(want) {
		t.Fatalf("%d bodies: %+v", len(got), got)
	}
	for i, w := range want {
		g := got[i]
		if string(g.Data) != w.data || g.Pos.File != w.file || g.Pos.Line != w.line || (g.Err != nil) != w.err {
			t.Errorf("body %d = %q %s:%d err=%v, want %q %s:%d err=%v", i, g.Data, g.Pos.File, g.Pos.Line, g.Err, w.data, w.file, w.line, w.err)
		}
	}
}

func TestResolveErrors(t *testing.T) {
	dir := t.TempDir()
	for _, paths := range [][]string{
		{filepath.Join(dir, "missing.json")},
		{filepath.Join(dir, "*.none")},
		{dir},
		{"[bad"},
	} {
		if _, err := Resolve(paths, false); err == nil {
			t.Errorf("Resolve(%q) accepted", paths)
		}
	}
	if files, err := Resolve([]string{"-"}, false); err != nil || len(files) != 1 {
		t.Errorf("stdin: %v %v", files, err)
	}
}

func TestStdin(t *testing.T) {
	s, err := openStarted(Options{Paths: []string{"-"}, Stdin: strings.NewReader(`[{"a":1},{"b":2}]`)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	got := readAll(t, s, -1)
	if len(got) != 2 || got[0].Pos.Kind != "stdin" || got[1].Form != stream.FormRecord {
		t.Fatalf("%+v", got)
	}
}

func TestFollowGrowingAndNewFiles(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "PT1H-a.json")
	os.WriteFile(a, []byte(`{"n":1}`+"\n"), 0o644)
	s, err := openStarted(Options{Paths: []string{filepath.Join(dir, "PT1H-*.json")}, Follow: true, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if got := readAll(t, s, 1); string(got[0].Data) != `{"n":1}` {
		t.Fatalf("%q", got[0].Data)
	}
	f, _ := os.OpenFile(a, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"n":`) // half a record: nothing yet
	f.Sync()
	time.Sleep(50 * time.Millisecond)
	f.WriteString("2}\n")
	f.Close()
	if got := readAll(t, s, 1); string(got[0].Data) != `{"n":2}` || got[0].Pos.Line != 2 {
		t.Fatalf("%q line %d", got[0].Data, got[0].Pos.Line)
	}
	os.WriteFile(filepath.Join(dir, "PT1H-b.json"), []byte(`{"n":3}`+"\n"), 0o644)
	if got := readAll(t, s, 1); string(got[0].Data) != `{"n":3}` {
		t.Fatalf("%q", got[0].Data)
	}
}

// signalReader closes reading at its first Read.
type signalReader struct {
	r       io.Reader
	reading chan struct{}
	once    sync.Once
}

func (s *signalReader) Read(p []byte) (int, error) {
	s.once.Do(func() { close(s.reading) })
	return s.r.Read(p)
}

// closeWithin closes s and fails the test when Close does not return.
func closeWithin(t *testing.T, s *Source) {
	t.Helper()
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		closed <- s.Close(ctx)
	}()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close blocked on a pending read")
	}
	if _, err := s.Read(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("Read after Close = %v, want io.EOF", err)
	}
}

// TestCloseWithPendingStdinRead: a read of standard input that nothing
// ends (a terminal, a pipe whose writer is idle) does not hold Close up.
func TestCloseWithPendingStdinRead(t *testing.T) {
	osr, osw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer osw.Close()
	defer osr.Close()
	pr, pw := io.Pipe()
	defer pw.Close()
	for name, in := range map[string]io.Reader{"io.Pipe": pr, "os.Pipe": osr} {
		t.Run(name, func(t *testing.T) {
			sr := &signalReader{r: in, reading: make(chan struct{})}
			s, err := openStarted(Options{Paths: []string{"-"}, Stdin: sr})
			if err != nil {
				t.Fatal(err)
			}
			<-sr.reading
			closeWithin(t, s)
		})
	}
}

func TestStartOnceAndReadBeforeStart(t *testing.T) {
	s, err := Open(Options{Paths: []string{"-"}, Stdin: strings.NewReader(`{"a":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(context.Background()); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("Read before Start = %v, want an error", err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Fatal("second Start = nil")
	}
	if got := readAll(t, s, -1); len(got) != 1 {
		t.Fatalf("%d bodies, want 1", len(got))
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Fatal("Start after Close = nil")
	}
}

// TestStartContextStopsReading: ending the context of Start stops a
// follow, as Close does.
func TestStartContextStopsReading(t *testing.T) {
	path := filepath.Join(t.TempDir(), "PT1H.json")
	if err := os.WriteFile(path, []byte(`{"n":1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Paths: []string{path}, Follow: true, PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, 1); string(got[0].Data) != `{"n":1}` {
		t.Fatalf("%q", got[0].Data)
	}
	cancel()
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	if _, err := s.Read(rctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Read after the context ended = %v, want io.EOF", err)
	}
}
