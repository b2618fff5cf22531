package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore/storetest"
	"github.com/sspr-exporter/sspr-exporter/internal/report"
)

// The reset record names no verification method; the flow's progress
// steps before it do. The resets report names the method the flow used,
// whatever outcome filter it runs with.
func TestResetsNameTheFlowsMethod(t *testing.T) {
	t0 := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	doc := func(id string, at time.Duration, action, outcome, flow, method string) ecs.Event {
		e := ecs.Event{Event: ecs.EventMeta{ID: id, Kind: "event", Action: action, Outcome: outcome, Dataset: ecs.Dataset}}
		e.Time = t0.Add(at)
		e.Timestamp = e.Time.Format(time.RFC3339Nano)
		e.User.Target.Name = "ada@contoso.example"
		e.User.Target.Domain = "contoso.example"
		e.Entra.SSPR.Flow.ID = flow
		e.Entra.SSPR.Method = method
		e.Entra.SSPR.Initiator = "user"
		return e
	}
	docs := []ecs.Event{
		doc("p1", 0, "password-reset-progress", "success", "f1", "mobile-sms"),
		doc("p2", 10*time.Second, "password-reset-progress", "success", "f1", ""),
		doc("r1", time.Minute, "password-reset", "success", "f1", ""),
		doc("r2", 2*time.Minute, "password-reset", "success", "f2", ""), // no steps seen
		doc("p3", 3*time.Minute, "password-reset-progress", "success", "f3", "app-code"),
		doc("r3", 4*time.Minute, "password-reset", "failure", "f3", ""),
		doc("r4", 5*time.Minute, "password-reset", "success", "f4", "email"), // its own method wins
	}
	p := filepath.Join(t.TempDir(), "docs.ndjson")
	storetest.WriteNDJSON(t, p, docs)
	r, err := eventstore.NewFiles(p)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		outcomes []string
		want     map[string]string // event id -> method
	}{
		{nil, map[string]string{"r1": "mobile-sms", "r2": "", "r3": "app-code", "r4": "email"}},
		{[]string{"failure"}, map[string]string{"r3": "app-code"}},
		{[]string{"success"}, map[string]string{"r1": "mobile-sms", "r2": "", "r4": "email"}},
	}
	for _, c := range cases {
		q := eventstore.Query{From: t0.Add(-time.Hour), To: t0.Add(time.Hour), Outcomes: c.outcomes}
		var out bytes.Buffer
		if _, err := report.Generate(context.Background(), r, report.Spec{Name: "resets", Query: q, Format: "json"}, &out, t0); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Rows []map[string]string `json:"rows"`
		}
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		methods := map[string]string{}
		for _, row := range got.Rows {
			methods[row["event_id"]] = row["method"]
		}
		if len(methods) != len(c.want) {
			t.Errorf("outcomes %v: rows %v, want %v", c.outcomes, methods, c.want)
			continue
		}
		for id, m := range c.want {
			if got, ok := methods[id]; !ok || got != m {
				t.Errorf("outcomes %v: %s has method %q (present %v), want %q", c.outcomes, id, got, ok, m)
			}
		}
	}
}
