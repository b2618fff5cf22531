package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
)

// detectDoc is an event document for the detect command's inputs.
func detectDoc(id string, at time.Time, action, outcome, user, ip string) ecs.Event {
	e := ecs.Event{Event: ecs.EventMeta{ID: id, Action: action, Outcome: outcome, Kind: "event", Dataset: ecs.Dataset, Category: []string{"iam"}, Type: []string{"change"}}}
	e.ECS.Version = ecs.Version
	e.Time = at.UTC()
	e.Timestamp = e.Time.Format(time.RFC3339Nano)
	e.User.Target.Name = user
	e.Source.IP = ip
	e.Cloud.Account.ID = "00000000-0000-0000-0000-000000000001"
	return e
}

// writeDetectInput writes a spray from one address (6 users) and 5
// failures of one user in the hour from 08:00, split over two files.
func writeDetectInput(t *testing.T, dir string) []string {
	t.Helper()
	at := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	var a, b []byte
	for i := range 6 {
		d := detectDoc(fmt.Sprintf("spray-%d", i), at.Add(time.Duration(i)*time.Minute), "password-reset", "failure", fmt.Sprintf("u%d@contoso.example", i), "192.0.2.7")
		a = append(d.AppendJSON(a), '\n')
	}
	for i := range 5 {
		d := detectDoc(fmt.Sprintf("user-%d", i), at.Add(time.Duration(10+i)*time.Minute), "password-reset-blocked", "failure", "noor@contoso.example", "198.51.100.9")
		b = append(d.AppendJSON(b), '\n')
	}
	pa, pb := filepath.Join(dir, "a.ndjson"), filepath.Join(dir, "b.ndjson")
	os.WriteFile(pa, a, 0o600)
	os.WriteFile(pb, b, 0o600)
	return []string{pa, pb}
}

func alertLines(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %s", sc.Bytes())
		}
		out = append(out, m)
	}
	return out
}

func ruleIDs(alerts []map[string]any) []string {
	var ids []string
	for _, a := range alerts {
		ids = append(ids, a["rule"].(map[string]any)["id"].(string))
	}
	slices.Sort(ids)
	return ids
}

func TestDetectCmdFromFiles(t *testing.T) {
	dir := t.TempDir()
	inputs := writeDetectInput(t, dir)
	var out, errOut bytes.Buffer
	args := append([]string{"--until", "2026-11-02T12:00:00Z", "--since", "24h"}, inputs...)
	if err := DetectCmd(context.Background(), args, Std{Out: &out, Err: &errOut}); err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	alerts := alertLines(t, out.Bytes())
	if got := ruleIDs(alerts); !slices.Equal(got, []string{"sspr-failed-attempts", "sspr-spray-ip"}) {
		t.Fatalf("rules %v\n%s", got, out.String())
	}
	for _, a := range alerts {
		if a["event"].(map[string]any)["kind"] != "alert" {
			t.Errorf("event.kind %v", a["event"])
		}
	}
	if !strings.Contains(errOut.String(), "2 alerts") {
		t.Errorf("summary %q", errOut.String())
	}
	// The same range again raises the same ids.
	var again bytes.Buffer
	if err := DetectCmd(context.Background(), args, Std{Out: &again, Err: &errOut}); err != nil {
		t.Fatal(err)
	}
	if again.String() != out.String() {
		t.Errorf("second evaluation differs:\n%s\n%s", out.String(), again.String())
	}
}

func TestDetectCmdConfigFileOutputAndRules(t *testing.T) {
	dir := t.TempDir()
	inputs := writeDetectInput(t, dir)
	alertsPath := filepath.Join(dir, "alerts.ndjson")
	cfgPath := filepath.Join(dir, "c.toml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
[output.file]
path = %q
[detect.rules.sspr-spray-ip]
enabled = false
[detect.output]
file = %q
[log]
format = "json"
`, filepath.Join(dir, "events.ndjson"), alertsPath)), 0o600)
	var out, errOut bytes.Buffer
	args := append([]string{"--config", cfgPath, "--until", "2026-11-02T12:00:00Z"}, inputs...)
	if err := DetectCmd(context.Background(), args, Std{Out: &out, Err: &errOut}); err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	data, _ := os.ReadFile(alertsPath)
	if got := ruleIDs(alertLines(t, data)); !slices.Equal(got, []string{"sspr-failed-attempts"}) {
		t.Errorf("alerts file rules %v", got)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q with a file output", out.String())
	}
}

func TestDetectCmdUsage(t *testing.T) {
	cases := [][]string{
		{"--since", "0s", "x.ndjson"},
		{"--until", "yesterday", "x.ndjson"},
		{}, // no input, no config
	}
	for _, args := range cases {
		t.Setenv("SSPR_CONFIG", "")
		var out bytes.Buffer
		err := DetectCmd(context.Background(), args, Std{Out: &out, Err: &out})
		if _, ok := err.(*UsageError); !ok {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
