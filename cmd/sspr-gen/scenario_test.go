package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/gen/scenario"
)

// TestWriteScenario: the stream and the labels land in their files, the
// same seed writes the same bytes, and unknown formats and scenarios are
// refused.
func TestWriteScenario(t *testing.T) {
	dir := t.TempDir()
	o := scenario.Options{Scenario: "admin-mass-reset", Seed: 9, Users: 400, Days: 12}
	for _, name := range []string{"a", "b"} {
		if err := writeScenario(filepath.Join(dir, name+".ndjson"), filepath.Join(dir, name+".json"), "ecs", o); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.ReadFile(filepath.Join(dir, "a.ndjson"))
	b, _ := os.ReadFile(filepath.Join(dir, "b.ndjson"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("streams of one seed: %d and %d bytes, equal %v", len(a), len(b), bytes.Equal(a, b))
	}
	var labels []scenario.Label
	lb, _ := os.ReadFile(filepath.Join(dir, "a.json"))
	if err := json.Unmarshal(lb, &labels); err != nil || len(labels) != 1 || labels[0].Rule != "sspr-admin-mass-reset" {
		t.Errorf("labels %s: %v", lb, err)
	}
	for _, c := range []struct {
		format, scn string
	}{{"xml", "benign"}, {"ecs", "no-such"}} {
		o := scenario.Options{Scenario: c.scn, Users: 400, Days: 12}
		if err := writeScenario(filepath.Join(dir, "x"), "", c.format, o); err == nil {
			t.Errorf("format %s, scenario %s: no error", c.format, c.scn)
		}
	}
}
