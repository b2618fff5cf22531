package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func doc(id string) ecs.Event {
	return ecs.Event{
		Timestamp: "2026-11-25T10:00:00Z",
		ECS:       ecs.ECSMeta{Version: ecs.Version},
		Event: ecs.EventMeta{
			Kind: "event", Category: []string{"iam"}, Type: []string{"user", "change"},
			Action: "password-reset", Outcome: "success", ID: id, Dataset: ecs.Dataset,
		},
	}
}

func docs(prefix string, n int) []ecs.Event {
	out := make([]ecs.Event, n)
	for i := range out {
		out[i] = doc(fmt.Sprintf("%s-%04d", prefix, i))
	}
	return out
}

// lineLen is the encoded size of doc(id) for ids of the same length.
func lineLen(t *testing.T, id string) int64 {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	d := doc(id)
	if err := enc.Encode(&d); err != nil {
		t.Fatal(err)
	}
	return int64(b.Len())
}

// ids parses NDJSON text and returns the event ids in order.
func ids(t *testing.T, text string) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e ecs.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q is not an ECS document: %v", sc.Text(), err)
		}
		out = append(out, e.Event.ID)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func idsOf(d []ecs.Event) []string {
	out := make([]string, len(d))
	for i := range d {
		out[i] = d[i].Event.ID
	}
	return out
}

// files returns the rotated files of path, oldest first, then path itself.
func files(t *testing.T, path string) []string {
	t.Helper()
	matches, err := filepath.Glob(path + ".*")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range matches {
		suffix := strings.TrimPrefix(m, path+".")
		if _, err := time.Parse(BackupLayout, suffix); err == nil {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	if _, err := os.Stat(path); err == nil {
		out = append(out, path)
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newSink(t *testing.T, cfg Config, opts ...Option) *Sink {
	t.Helper()
	s, err := New(cfg, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mut  func(*Config)
		want []string
	}{
		{"default", func(*Config) {}, nil},
		{"file with rotation", func(c *Config) {
			c.Path, c.MaxBytes, c.MaxAge, c.MaxBackups = "/var/log/x.ndjson", 1, time.Hour, 3
		}, nil},
		{"empty path", func(c *Config) { c.Path = "" }, []string{"path: "}},
		{"negatives", func(c *Config) {
			c.Path, c.MaxBytes, c.MaxAge, c.MaxBackups = "x", -1, -time.Second, -2
		}, []string{"max_bytes: ", "max_age: ", "max_backups: "}},
		{"rotation on stdout", func(c *Config) {
			c.MaxBytes, c.MaxAge, c.MaxBackups = 10, time.Second, 1
		}, []string{"max_bytes: ", "max_age: ", "max_backups: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mut(&c)
			errs := c.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d problems %v, want %d", len(errs), errs, len(tt.want))
			}
			for i, err := range errs {
				if !strings.HasPrefix(err.Error(), tt.want[i]) {
					t.Errorf("problem %d = %q, want prefix %q", i, err, tt.want[i])
				}
			}
		})
	}
}

func TestStdoutMode(t *testing.T) {
	var out syncbuf.Buffer
	s := newSink(t, DefaultConfig(), WithStdout(&out))
	in := docs("a", 5)
	in[2].UserAgent.Original = "Mozilla/5.0 <x> & \"y\""
	if err := s.Write(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	// Write must have flushed: nothing may be held in the buffer.
	got := out.String()
	if !slices.Equal(ids(t, got), idsOf(in)) {
		t.Fatalf("ids = %v, want %v", ids(t, got), idsOf(in))
	}
	if !strings.Contains(got, `"Mozilla/5.0 <x> & \"y\""`) {
		t.Errorf("HTML characters escaped: %s", got)
	}
	if n := strings.Count(got, "\n"); n != 5 {
		t.Errorf("%d lines, want 5", n)
	}
	if err := s.Ready(); err != nil {
		t.Errorf("Ready = %v", err)
	}
}

// TestRealStdout covers the default destination, redirected to a regular
// file as a shell would, which the sink then also fsyncs.
func TestRealStdout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	orig := os.Stdout
	os.Stdout = f
	defer func() { os.Stdout = orig }()
	s, err := New(DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.w.fsync == nil {
		t.Error("stdout redirected to a regular file is not synced")
	}
	in := docs("out", 3)
	if err := s.Write(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, readFile(t, path)); !slices.Equal(got, idsOf(in)) {
		t.Fatalf("ids = %v, want %v", got, idsOf(in))
	}
	// Closing the sink must leave the process's standard output open.
	if _, err := f.WriteString("still open\n"); err != nil {
		t.Errorf("stdout closed by the sink: %v", err)
	}
}

func TestSizeRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.ndjson")
	ll := lineLen(t, "s-0000")
	clock := newClock()
	cfg := Config{Path: path, MaxBytes: 3*ll + ll/2}
	s := newSink(t, cfg, WithClock(clock.Now))
	in := docs("s", 10)
	// Uneven batches: rotation must happen inside a batch too.
	for _, batch := range [][]ecs.Event{in[:1], in[1:5], in[5:6], in[6:10]} {
		if err := s.Write(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	fs := files(t, path)
	if len(fs) != 4 { // 3+3+3+1 lines
		t.Fatalf("files = %v, want 4", fs)
	}
	var all []string
	for i, f := range fs {
		text := readFile(t, f)
		if int64(len(text)) > cfg.MaxBytes {
			t.Errorf("%s has %d bytes, max %d", f, len(text), cfg.MaxBytes)
		}
		want := 3
		if i == len(fs)-1 {
			want = 1
		}
		if n := len(ids(t, text)); n != want {
			t.Errorf("%s has %d lines, want %d", f, n, want)
		}
		all = append(all, ids(t, text)...)
	}
	if !slices.Equal(all, idsOf(in)) {
		t.Fatalf("order across files = %v, want %v", all, idsOf(in))
	}
}

func TestOversizeLineGoesAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.ndjson")
	ll := lineLen(t, "o-0000")
	s := newSink(t, Config{Path: path, MaxBytes: 2 * ll}, WithClock(newClock().Now))
	in := docs("o", 4)
	in[1].UserAgent.Original = strings.Repeat("x", int(3*ll))
	if err := s.Write(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	fs := files(t, path)
	var perFile [][]string
	for _, f := range fs {
		perFile = append(perFile, ids(t, readFile(t, f)))
	}
	want := [][]string{{"o-0000"}, {"o-0001"}, {"o-0002", "o-0003"}}
	if fmt.Sprint(perFile) != fmt.Sprint(want) {
		t.Fatalf("lines per file = %v, want %v", perFile, want)
	}
}

func TestTimeRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.ndjson")
	clock := newClock()
	s := newSink(t, Config{Path: path, MaxAge: time.Hour}, WithClock(clock.Now))
	ctx := context.Background()
	if err := s.Write(ctx, docs("t1", 2)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(59 * time.Minute)
	if err := s.Write(ctx, docs("t2", 2)); err != nil {
		t.Fatal(err)
	}
	if fs := files(t, path); len(fs) != 1 {
		t.Fatalf("rotated before max_age: %v", fs)
	}
	clock.Advance(time.Minute + 1500*time.Microsecond)
	if err := s.Write(ctx, docs("t3", 1)); err != nil {
		t.Fatal(err)
	}
	fs := files(t, path)
	wantBackup := path + ".2026-11-25T11-00-00.001"
	if len(fs) != 2 || fs[0] != wantBackup {
		t.Fatalf("files = %v, want [%s %s]", fs, wantBackup, path)
	}
	if got := ids(t, readFile(t, fs[0])); !slices.Equal(got, []string{"t1-0000", "t1-0001", "t2-0000", "t2-0001"}) {
		t.Errorf("backup ids = %v", got)
	}
	if got := ids(t, readFile(t, path)); !slices.Equal(got, []string{"t3-0000"}) {
		t.Errorf("current ids = %v", got)
	}
	// The new file's age counts from the rotation, not from the first file.
	clock.Advance(30 * time.Minute)
	if err := s.Write(ctx, docs("t4", 1)); err != nil {
		t.Fatal(err)
	}
	if fs := files(t, path); len(fs) != 2 {
		t.Fatalf("new file rotated too early: %v", fs)
	}
}

// TestTimeRotationIdleEmptyFile: a file's age starts with its first line.
func TestTimeRotationIdleEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.ndjson")
	clock := newClock()
	s := newSink(t, Config{Path: path, MaxAge: time.Hour}, WithClock(clock.Now))
	clock.Advance(2 * time.Hour)
	if err := s.Write(context.Background(), docs("a", 1)); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Minute)
	if err := s.Write(context.Background(), docs("b", 1)); err != nil {
		t.Fatal(err)
	}
	if fs := files(t, path); len(fs) != 1 {
		t.Fatalf("rotated a file holding 30 minutes of lines: %v", fs)
	}
}

// TestTimeRotationAfterRestart checks that a file left by an earlier run
// keeps its age: it began when the newest backup was rotated away.
func TestTimeRotationAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.ndjson")
	clock := newClock()
	old := clock.Now().Add(-2 * time.Hour)
	if err := os.WriteFile(path+"."+old.Format(BackupLayout), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"previous":"run"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, clock.Now(), clock.Now()); err != nil {
		t.Fatal(err)
	}
	s := newSink(t, Config{Path: path, MaxAge: time.Hour}, WithClock(clock.Now))
	if err := s.Write(context.Background(), docs("r", 1)); err != nil {
		t.Fatal(err)
	}
	fs := files(t, path)
	if len(fs) != 3 {
		t.Fatalf("files = %v, want the old backup, the previous run's file, the new file", fs)
	}
	if got := readFile(t, fs[1]); got != `{"previous":"run"}`+"\n" {
		t.Errorf("previous run's file = %q", got)
	}
}

func TestAppendsToExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.ndjson")
	ll := lineLen(t, "e-0000")
	existing := bytes.Repeat([]byte("x"), int(ll))
	existing[len(existing)-1] = '\n'
	if err := os.WriteFile(path, existing, 0o600); err != nil {
		t.Fatal(err)
	}
	// Room for exactly two lines: the existing one counts.
	s := newSink(t, Config{Path: path, MaxBytes: 2 * ll}, WithClock(newClock().Now))
	if err := s.Write(context.Background(), docs("e", 2)); err != nil {
		t.Fatal(err)
	}
	fs := files(t, path)
	if len(fs) != 2 {
		t.Fatalf("files = %v, want 2", fs)
	}
	if got := readFile(t, fs[0]); !strings.HasPrefix(got, string(existing)) || len(got) != int(2*ll) {
		t.Errorf("first file = %q, want the existing line then e-0000", got)
	}
}

func TestPruning(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.ndjson")
	unrelated := []string{path + ".bak", path + ".2026-11-25T99-00-00.000", filepath.Join(dir, "other.2026-11-25T10-00-00.000")}
	for _, u := range unrelated {
		if err := os.WriteFile(u, []byte("keep\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ll := lineLen(t, "p-0000")
	clock := newClock()
	s := newSink(t, Config{Path: path, MaxBytes: ll, MaxBackups: 2}, WithClock(clock.Now))
	in := docs("p", 6)
	for i := range in {
		if err := s.Write(context.Background(), in[i:i+1]); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
	}
	fs := files(t, path)
	var got []string
	for _, f := range fs {
		got = append(got, ids(t, readFile(t, f))...)
	}
	// Five rotations happened; the two newest backups and the current file remain.
	if !slices.Equal(got, []string{"p-0003", "p-0004", "p-0005"}) {
		t.Fatalf("kept ids = %v (files %v)", got, fs)
	}
	for _, u := range unrelated {
		if _, err := os.Stat(u); err != nil {
			t.Errorf("unrelated file %s removed: %v", u, err)
		}
	}
}

// TestBackupNamesUnique rotates many times at one instant: names must not
// collide and must still sort in rotation order.
func TestBackupNamesUnique(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.ndjson")
	ll := lineLen(t, "u-0000")
	s := newSink(t, Config{Path: path, MaxBytes: ll}, WithClock(newClock().Now))
	in := docs("u", 5)
	if err := s.Write(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	fs := files(t, path)
	if len(fs) != 5 {
		t.Fatalf("files = %v, want 5", fs)
	}
	var got []string
	for _, f := range fs {
		got = append(got, ids(t, readFile(t, f))...)
	}
	if !slices.Equal(got, idsOf(in)) {
		t.Fatalf("order by name = %v, want %v", got, idsOf(in))
	}
}

func TestConcurrentWritesSerialized(t *testing.T) {
	const writers, calls, perCall = 6, 40, 7
	for _, mode := range []string{"file", "stdout"} {
		t.Run(mode, func(t *testing.T) {
			var out syncbuf.Buffer
			path := filepath.Join(t.TempDir(), "out.ndjson")
			cfg := Config{Path: path, MaxBytes: 20 << 10}
			if mode == "stdout" {
				cfg = DefaultConfig()
			}
			s := newSink(t, cfg, WithStdout(&out))
			var wg sync.WaitGroup
			for g := range writers {
				wg.Go(func() {
					for c := range calls {
						if err := s.Write(context.Background(), docs(fmt.Sprintf("g%d-c%03d", g, c), perCall)); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			var text string
			if mode == "stdout" {
				text = out.String()
			} else {
				for _, f := range files(t, path) {
					text += readFile(t, f)
				}
			}
			got := ids(t, text)
			if len(got) != writers*calls*perCall {
				t.Fatalf("%d lines, want %d", len(got), writers*calls*perCall)
			}
			// Each call's documents are contiguous and in order; each
			// writer's calls appear in the order made.
			next := map[string]int{}
			for i := 0; i < len(got); i += perCall {
				call := strings.TrimSuffix(got[i], "-0000")
				for j := range perCall {
					if want := fmt.Sprintf("%s-%04d", call, j); got[i+j] != want {
						t.Fatalf("line %d = %s, want %s", i+j, got[i+j], want)
					}
				}
				var g, c int
				if _, err := fmt.Sscanf(call, "g%d-c%d", &g, &c); err != nil {
					t.Fatalf("line %d: %v", i, err)
				}
				if c != next[fmt.Sprint(g)] {
					t.Fatalf("writer %d call %d came before call %d", g, c, next[fmt.Sprint(g)])
				}
				next[fmt.Sprint(g)]++
			}
		})
	}
}

type failingWriter struct {
	mu   sync.Mutex
	fail bool
	b    bytes.Buffer
}

func (f *failingWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return 0, errors.New("disk on fire")
	}
	return f.b.Write(p)
}

func TestWriteErrorAndRecovery(t *testing.T) {
	fw := &failingWriter{fail: true}
	s := newSink(t, DefaultConfig(), WithStdout(fw))
	err := s.Write(context.Background(), docs("f", 2))
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Write = %v, want the destination's error", err)
	}
	if _, ok := stream.AsRejected(err); ok {
		t.Fatal("a destination failure must not be reported as rejected documents")
	}
	if s.Ready() == nil {
		t.Error("Ready = nil after a failed write")
	}
	fw.mu.Lock()
	fw.fail = false
	fw.mu.Unlock()
	if err := s.Write(context.Background(), docs("g", 2)); err != nil {
		t.Fatal(err)
	}
	// The failed batch's lines were dropped, not written late.
	if got := ids(t, fw.b.String()); !slices.Equal(got, []string{"g-0000", "g-0001"}) {
		t.Errorf("ids = %v", got)
	}
	if err := s.Ready(); err != nil {
		t.Errorf("Ready = %v after a good write", err)
	}
}

// TestFileErrorAndRecovery fails the fsync of a batch: the batch must be
// reported as failed, cut out of the file, and the next batch must land
// after the last durable line.
func TestFileErrorAndRecovery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.ndjson")
	s := newSink(t, Config{Path: path}, WithClock(newClock().Now))
	ctx := context.Background()
	if err := s.Write(ctx, docs("a", 2)); err != nil {
		t.Fatal(err)
	}
	s.w.mu.Lock()
	s.w.fsync = func() error { return errors.New("i/o error") }
	s.w.mu.Unlock()
	if err := s.Write(ctx, docs("b", 3)); err == nil || !strings.Contains(err.Error(), "i/o error") {
		t.Fatalf("Write = %v, want the fsync error", err)
	}
	if got := ids(t, readFile(t, path)); !slices.Equal(got, []string{"a-0000", "a-0001"}) {
		t.Errorf("after the failure the file holds %v", got)
	}
	if s.Ready() == nil {
		t.Error("Ready = nil after a failed write")
	}
	if err := s.Write(ctx, docs("c", 1)); err != nil {
		t.Fatalf("no recovery: %v", err)
	}
	if got := ids(t, readFile(t, path)); !slices.Equal(got, []string{"a-0000", "a-0001", "c-0000"}) {
		t.Errorf("ids = %v", got)
	}
}

func TestDeviceFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	s := newSink(t, Config{Path: "/dev/full"})
	for range 2 {
		if err := s.Write(context.Background(), docs("x", 1)); err == nil {
			t.Fatal("Write to a full device succeeded")
		}
	}
}

func TestClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.ndjson")
	s, err := New(Config{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), docs("c", 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), docs("d", 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if got := ids(t, readFile(t, path)); !slices.Equal(got, []string{"c-0000"}) {
		t.Errorf("ids = %v", got)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{Path: ""}, nil); err == nil || !strings.Contains(err.Error(), "path") {
		t.Errorf("empty path: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "out.ndjson")
	if _, err := New(Config{Path: missing}, nil); err == nil {
		t.Error("missing directory accepted")
	}
}

func TestCanceledContext(t *testing.T) {
	var out syncbuf.Buffer
	s := newSink(t, DefaultConfig(), WithStdout(&out))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, docs("x", 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Write = %v, want context.Canceled", err)
	}
	if out.String() != "" {
		t.Errorf("wrote %q after cancel", out.String())
	}
}

// TestWriterForDeadLetters uses the Writer as the io.Writer of the
// dead-letter encoder, with rotation.
func TestWriterForDeadLetters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead.ndjson")
	w, err := OpenWriter(Options{Path: path, MaxBytes: 400, Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	dl := deadletter.NewNDJSON(w)
	for i := range 5 {
		r := deadletter.New(time.Unix(0, 0), deadletter.StageDecode, deadletter.ReasonInvalidJSON, stream.Position{Kind: "file", File: "in.json", Line: int64(i + 1)},
			errors.New("bad json"), []byte(strings.Repeat("y", 150)))
		if err := dl.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var lines []int64
	fs := files(t, path)
	if len(fs) < 2 {
		t.Fatalf("no rotation: %v", fs)
	}
	for _, f := range fs {
		sc := bufio.NewScanner(strings.NewReader(readFile(t, f)))
		for sc.Scan() {
			r, ok := deadletter.Parse(sc.Bytes())
			if !ok {
				t.Fatalf("%s: not a dead letter: %q", f, sc.Text())
			}
			lines = append(lines, r.Source.Line)
		}
	}
	if !slices.Equal(lines, []int64{1, 2, 3, 4, 5}) {
		t.Errorf("records = %v", lines)
	}
}

func BenchmarkSinkWrite(b *testing.B) {
	for _, dest := range []string{"file", "discard"} {
		b.Run(dest, func(b *testing.B) {
			cfg := Config{Path: filepath.Join(b.TempDir(), "out.ndjson"), MaxBytes: 64 << 20, MaxBackups: 2}
			var opts []Option
			if dest == "discard" {
				cfg = DefaultConfig()
				opts = append(opts, WithStdout(discard{}))
			}
			s, err := New(cfg, nil, opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close(context.Background())
			batch := docs("bench", 500)
			for i := range batch {
				batch[i].User.Name = "alice@contoso.com"
				batch[i].Source.IP = "203.0.113.7"
				batch[i].UserAgent.Original = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"
				batch[i].Azure.AuditLogs.AdditionalDetails = map[string]string{"UserAgent": "x", "ClientIP": "203.0.113.7"}
			}
			var enc bytes.Buffer
			je := json.NewEncoder(&enc)
			je.SetEscapeHTML(false)
			for i := range batch {
				if err := je.Encode(&batch[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(enc.Len()))
			n := 0
			for b.Loop() {
				if err := s.Write(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(len(batch)*n)/b.Elapsed().Seconds(), "docs/s")
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestTornLineIsCutOnOpen: a crash in the middle of a line leaves half a
// document; the next writer removes it (it was never acknowledged, so it is
// written again) and its own lines start cleanly.
func TestTornLineIsCutOnOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.ndjson")
	if err := os.WriteFile(path, []byte("{\"a\":1}\n{\"b\":2}\n{\"torn\":"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := OpenWriter(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteLines([]byte("{\"c\":3}\n")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	data, _ := os.ReadFile(path)
	if string(data) != "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n" {
		t.Errorf("file after restart:\n%s", data)
	}
}
