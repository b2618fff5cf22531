package bulktest

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/pipeline"
	filesource "github.com/sspr-exporter/sspr-exporter/internal/source/file"
	"github.com/sspr-exporter/sspr-exporter/internal/testdata"
)

// InputFiles lists every input file of the project's test data
// (testdata/**), sorted: everything but the documentation and the golden
// outputs.
func InputFiles(t testing.TB) []string {
	t.Helper()
	root := testdata.Project(t)
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && d.Name() == "golden":
			return filepath.SkipDir
		case d.Type().IsRegular() && !strings.HasSuffix(d.Name(), ".md"):
			files = append(files, p)
		}
		return nil
	})
	if err != nil || len(files) < 10 {
		t.Fatalf("test data under %s: %d files, %v", root, len(files), err)
	}
	sort.Strings(files)
	return files
}

func source(t testing.TB, out Output, files []string) *filesource.Source {
	t.Helper()
	src, err := filesource.Open(filesource.Options{Paths: files, MaxBodyBytes: out.MaxBodyBytes})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return src
}

// DecodedIDs decodes files with out's decoder and returns the event ids
// of the documents, with how many documents there were.
func DecodedIDs(t testing.TB, out Output, files []string) (map[string]bool, int) {
	t.Helper()
	dec := out.Decoder
	if dec.Now == nil {
		dec.Now = time.Now // as pipeline.New does
	}
	src := source(t, out, files)
	defer src.Close(context.Background())
	ids := map[string]bool{}
	docs := 0
	for {
		b, err := src.Read(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dec.Decode(b.Bodies).Docs {
			ids[d.Event.ID] = true
			docs++
		}
		_ = b.Ack(context.Background(), nil)
	}
	return ids, docs
}

// The whole of the project's test data, read by the file source and
// decoded by the exporter's own decode stage, goes through the pipeline
// into the sink twice: the node holds exactly one document per event id
// the decoder produced, and nothing else.
func replayTestData(t *testing.T, out Output, url string) {
	const prefix = "ct-replay"
	out.Setup(t, url, prefix)
	files := InputFiles(t)
	want, docs := DecodedIDs(t, out, files)
	if len(want) < 20 {
		t.Fatalf("the test data decodes to %d ids; the walk or the decoder is broken", len(want))
	}
	s := out.Sink(t, url, Options(prefix), nil)
	for round := range 2 {
		var dl bytes.Buffer
		src := source(t, out, files)
		p := pipeline.New(src, []pipeline.NamedSink{{Name: s.Name(), Sink: s}}, deadletter.NewNDJSON(&dl), pipeline.Options{Decoder: out.Decoder})
		if err := p.Run(Ctx(t)); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		_ = src.Close(context.Background())
		for _, line := range bytes.Split(bytes.TrimSpace(dl.Bytes()), []byte("\n")) {
			if r, ok := deadletter.Parse(line); ok && r.Stage == deadletter.StageSink {
				t.Errorf("round %d: the sink refused a document of the test data: %s", round, r.Error)
			}
		}
	}
	if n := Count(t, url, prefix+"-*"); n != len(want) {
		t.Errorf("_count %d, want %d, one per event id", n, len(want))
	}
	got := IDCounts(t, url, prefix+"-*", len(want))
	for id, n := range got {
		if !want[id] {
			t.Errorf("the node holds %q, which the decoder did not produce", id)
		}
		if n != 1 {
			t.Errorf("the node holds %d copies of %q", n, id)
		}
	}
	for id := range want {
		if got[id] == 0 {
			t.Errorf("%q is not stored", id)
		}
	}
	if st := s.Stats(); st.Created != int64(len(want)) || st.Created+st.Duplicates != int64(2*docs) {
		t.Errorf("stats %+v: want %d created and %d duplicates of %d documents per round", st, len(want), 2*docs-len(want), docs)
	}
	t.Logf("%d files, %d documents per round, %d event ids, %d indices", len(files), docs, len(want), len(Indices(t, url, prefix+"-*")))
}
