package app

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/streamtest"
	"github.com/sspr-exporter/sspr-exporter/internal/telemetry"
)

// TestEveryOutputSectionIsWired: each sub-section of [output] has its
// entry in the outputs list, enabled as the config says, and the other way
// round; each input type and dead-letter type likewise.
func TestEveryOutputSectionIsWired(t *testing.T) {
	var sections []string
	ot := reflect.TypeFor[config.Output]()
	for i := range ot.NumField() {
		sections = append(sections, ot.Field(i).Tag.Get("toml"))
	}
	var names []string
	for _, o := range outputs(config.Default()) {
		names = append(names, o.name)
		if o.open == nil || o.check == nil {
			t.Errorf("output %s cannot be opened or checked", o.name)
		}
	}
	if !slices.Equal(names, sections) {
		t.Errorf("outputs %v, want one per section of [output]: %v", names, sections)
	}
	for _, typ := range []string{config.InputFile, config.InputEventHubs, config.InputKafka} {
		cfg := config.Default()
		cfg.Input.Type = typ
		var on []string
		for _, in := range inputs(cfg) {
			if in.enabled {
				on = append(on, in.name)
			}
		}
		if !slices.Equal(on, []string{typ}) {
			t.Errorf("input.type %s enables %v", typ, on)
		}
	}
	for _, typ := range []string{config.DeadLetterFile, config.DeadLetterKafka} {
		cfg := config.Default()
		cfg.DeadLetter.Type = typ
		n := 0
		for _, dl := range deadLetters(cfg) {
			if dl.enabled {
				n++
			}
		}
		if n != 1 {
			t.Errorf("dead_letter.type %s enables %d outputs", typ, n)
		}
	}
}

// TestSetupWithNothingToSetUp names every output that setup can install
// for.
func TestSetupWithNothingToSetUp(t *testing.T) {
	var out bytes.Buffer
	if err := Setup(context.Background(), config.Default(), discardLogger(), &out); err != nil {
		t.Fatal(err)
	}
	if want := "nothing to set up: none of output.elasticsearch, output.opensearch and output.kafka is enabled\n"; out.String() != want {
		t.Errorf("setup said %q, want %q", out.String(), want)
	}
}

// TestCheckLines: one line per endpoint of each enabled component, in the
// order input, outputs, dead letters.
func TestCheckLines(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.json")
	if err := os.WriteFile(in, []byte(reset("1", "success")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(path, []byte(`
[input.file]
paths = ["`+in+`"]
[output.file]
path = "`+filepath.Join(dir, "out.ndjson")+`"
[dead_letter]
path = "`+filepath.Join(dir, "missing", "dl.ndjson")+`"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	err := CheckCmd(context.Background(), []string{"--config", path}, Std{Out: &stdout, Err: &bytes.Buffer{}})
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 1 {
		t.Errorf("check returned %v, want exit status 1", err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	want := []string{"OK   config", "OK   input.file", "OK   output.file", "FAIL dead_letter: cannot write next to " + filepath.Join(dir, "missing", "dl.ndjson")}
	if len(lines) != len(want) {
		t.Fatalf("check printed %q, want %d lines", stdout.String(), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("line %d: %q, want %q...", i, lines[i], want[i])
		}
	}
}

// startedSource is a source that reads only once started.
type startedSource struct {
	*streamtest.Source
	starts []context.Context
}

func (s *startedSource) Start(ctx context.Context) error {
	s.starts = append(s.starts, ctx)
	return nil
}

// TestRunStartsTheSourceOnce: the configured source starts when Run does,
// not when it is built, once, under a context that a signal does not end
// (what it read is delivered and acknowledged in the grace period).
func TestRunStartsTheSourceOnce(t *testing.T) {
	src := &startedSource{Source: streamtest.NewSource(streamtest.Bodies(stream.Position{Kind: "eventhubs"}, reset("r1", "success")))}
	sink := &streamtest.Sink{}
	logger := discardLogger()
	ex, err := build(config.Default(), fakeComponents(src, sink, &bytes.Buffer{}), Std{}, logger, telemetry.New(config.Default().Telemetry, logger, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(src.starts) != 0 {
		t.Fatal("build started the source")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := ex.Run(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := ex.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(src.starts) != 1 || src.starts[0].Err() != nil {
		t.Errorf("source started %d times; its context ended with the command's: %v", len(src.starts), src.starts)
	}
	if got := sink.IDs(); len(got) != 1 || got[0] != "r1" {
		t.Errorf("delivered %v", got)
	}
}

// TestBuildWithSource: a command's own source replaces the configured
// input, under its name in readiness; the command starts it, not the
// exporter.
func TestBuildWithSource(t *testing.T) {
	src := &startedSource{Source: streamtest.NewSource(streamtest.Bodies(stream.Position{Kind: "backfill"}, reset("b1", "success")))}
	src.SetReady(errors.New("not yet"))
	var out bytes.Buffer
	logger := discardLogger()
	tel := telemetry.New(config.Default().Telemetry, logger, nil)
	ex, err := Build(config.Default(), Std{Out: &out, Err: &bytes.Buffer{}}, logger, tel, WithSource("backfill", src))
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ex.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(src.starts) != 0 {
		t.Errorf("the exporter started a source the command gave it")
	}
	if !strings.Contains(out.String(), `"id":"b1"`) {
		t.Errorf("output %q", out.String())
	}
	if acks := src.Acks(); len(acks) != 1 || acks[0] != nil {
		t.Errorf("acks %v", acks)
	}
	rep := tel.Health.Check()
	if rep.Ready || !notReady(rep, "source.backfill") {
		t.Errorf("readiness %+v, want source.backfill not ready", rep)
	}
}
