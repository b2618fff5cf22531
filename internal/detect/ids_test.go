package detect

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
)

func TestAlertIDIsTheSpecifiedDigest(t *testing.T) {
	// printf 'sspr-spray-ip\x00192.0.2.7\x002026-11-02T08:00:00Z' | sha256sum | cut -c1-32
	got := AlertID(IDSprayIP, "192.0.2.7", WindowAnchor(t0))
	if got != "d8c78f5c6111768cf7d68f8168f9422c" {
		t.Fatalf("id %q", got)
	}
	if AlertID(IDSprayIP, "192.0.2.7", WindowAnchor(t0.In(time.FixedZone("x", 3600)))) != got {
		t.Error("the anchor depends on the time zone")
	}
	if AlertID(IDSprayIP, "192.0.2.8", WindowAnchor(t0)) == got || AlertID(IDFailedAttempts, "192.0.2.7", WindowAnchor(t0)) == got ||
		AlertID(IDSprayIP, "192.0.2.7", WindowAnchor(t0.Add(time.Hour))) == got {
		t.Error("rule, key and anchor must each change the id")
	}
	// The separator keeps ("a", "b\x00c") apart from ("a\x00b", "c").
	if AlertID("a", "b", "c") == AlertID("a", "", "b\x00c") {
		t.Error("separator")
	}
}

// mixed is a day of documents that raises alerts of most rules.
func mixed() mem {
	var docs []ecs.Event
	for h := range 24 {
		at := t0.Add(time.Duration(h) * time.Hour)
		docs = append(docs, n("f"+itoa(h), 6, at, time.Minute, "password-reset", "failure", each("u%d@x.example"), ip("192.0.2.7"))...)
		docs = append(docs, n("s"+itoa(h), 12, at.Add(10*time.Minute), time.Minute, "password-reset", "success", each("u%d@x.example"), domain("x.example"), groups("Finance"), roles("Global Administrator"), country("DE"), ip("198.51.100.1"))...)
		docs = append(docs, n("c"+itoa(h), 3, at.Add(30*time.Minute), time.Minute, "security-info-registered", "success", each("u%d@x.example"), ip("203.0.113.9"))...)
	}
	docs = append(docs, ev("h", t0.Add(-time.Hour), "password-reset", "success", "u1@x.example", country("FR")))
	return docs
}

func TestReEvaluationIsIdempotent(t *testing.T) {
	e, err := NewEngine(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ids := func(from, to time.Time) []string {
		alerts, err := e.Evaluate(ctx, mixed(), from, to)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range alerts {
			out = append(out, a.ID)
		}
		return out
	}
	whole := ids(t0, t0.Add(24*time.Hour))
	if len(whole) < 24 {
		t.Fatalf("only %d alerts", len(whole))
	}
	if again := ids(t0, t0.Add(24*time.Hour)); !slices.Equal(again, whole) {
		t.Error("evaluating twice gave other alerts")
	}
	seen := map[string]int{}
	for _, id := range whole {
		seen[id]++
		if seen[id] > 1 {
			t.Errorf("id %s twice in one evaluation", id)
		}
	}
	// Overlapping ranges, as a schedule with a lookback evaluates them:
	// every alert has the id it has in the whole range.
	for _, r := range [][2]time.Duration{{0, 7 * time.Hour}, {5 * time.Hour, 13 * time.Hour}, {12 * time.Hour, 24 * time.Hour}} {
		for _, id := range ids(t0.Add(r[0]), t0.Add(r[1])) {
			if seen[id] == 0 {
				t.Errorf("range %v raised %s, which the whole range did not", r, id)
			}
			seen[id] += 10
		}
	}
	for id, c := range seen {
		if c == 1 {
			t.Errorf("alert %s of the whole range raised by no part", id)
		}
	}
}

func TestAlertDocument(t *testing.T) {
	e, _ := NewEngine(only(IDSprayIP))
	docs := n("a", 5, t0, time.Minute, "password-reset", "failure", each("u%d@x.example"), ip("192.0.2.7"))
	alerts, err := e.Evaluate(context.Background(), mem(docs), t0, t0.Add(time.Hour))
	if err != nil || len(alerts) != 1 {
		t.Fatal(alerts, err)
	}
	b, err := json.Marshal(alerts[0])
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	get := func(path ...string) any {
		var v any = d
		for _, p := range path {
			m, _ := v.(map[string]any)
			v = m[p]
		}
		return v
	}
	want := map[string]any{
		"@timestamp":                       "2026-11-02T09:00:00Z",
		"event.kind":                       "alert",
		"event.dataset":                    "entra.sspr.alert",
		"event.id":                         AlertID(IDSprayIP, "192.0.2.7", "2026-11-02T08:00:00Z"),
		"event.start":                      "2026-11-02T08:00:00Z",
		"event.end":                        "2026-11-02T09:00:00Z",
		"event.severity":                   73.0,
		"event.risk_score":                 73.0,
		"rule.id":                          "sspr-spray-ip",
		"rule.ruleset":                     "sspr-exporter",
		"rule.version":                     "1",
		"threat.framework":                 "MITRE ATT&CK",
		"threat.tactic.id":                 "TA0006",
		"threat.technique.id":              "T1110",
		"threat.technique.subtechnique.id": "T1110.003",
		"threat.technique.subtechnique.reference": "https://attack.mitre.org/techniques/T1110/003/",
		"source.ip":                       "192.0.2.7",
		"cloud.account.id":                "tenant-1",
		"entra.sspr.alert.key":            "192.0.2.7",
		"entra.sspr.alert.count":          5.0,
		"entra.sspr.alert.evidence_total": 5.0,
	}
	for k, v := range want {
		if got := get(splitDots(k)...); got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	if ev := get("entra", "sspr", "alert", "evidence").([]any); len(ev) != 5 || ev[0] != "a-000" {
		t.Errorf("evidence %v", ev)
	}
	if u := get("related", "user").([]any); len(u) != 5 {
		t.Errorf("related.user %v", u)
	}
	if Index(IndexPrefix, &alerts[0]) != "entra-sspr-alerts-2026.11" {
		t.Errorf("index %s", Index(IndexPrefix, &alerts[0]))
	}
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := range len(s) {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func TestEvidenceCappedAndSorted(t *testing.T) {
	e, _ := NewEngine(only(IDFailedAttempts))
	docs := n("z", 150, t0, time.Second, "password-reset", "failure", same("a@x.example"))
	slices.Reverse(docs)
	alerts, _ := e.Evaluate(context.Background(), mem(docs), t0, t0.Add(time.Hour))
	if len(alerts) != 1 {
		t.Fatal(alerts)
	}
	a := alerts[0]
	if len(a.Evidence) != MaxEvidence || a.EvidenceTotal != 150 || a.Count != 150 || !slices.IsSorted(a.Evidence) || a.Evidence[0] != "z-000" {
		t.Errorf("evidence %d of %d, count %d, first %s", len(a.Evidence), a.EvidenceTotal, a.Count, a.Evidence[0])
	}
}

func TestConfigValidateNamesThePath(t *testing.T) {
	c := DefaultConfig()
	c.Rules.SprayIP.Threshold = 0
	c.Rules.SurgeGroup.Baseline = 36 * time.Hour
	c.Rules.ResetThenSecInfo.Within = 0
	c.Rules.PrivilegedReset.Roles = nil
	var got []string
	for _, err := range c.Validate() {
		got = append(got, err.Error())
	}
	for _, want := range []string{"rules.sspr-spray-ip.threshold: ", "rules.sspr-surge-group.baseline: ", "rules.sspr-reset-then-secinfo.within: ", "rules.sspr-privileged-reset.roles: "} {
		if !slices.ContainsFunc(got, func(s string) bool { return len(s) > len(want) && s[:len(want)] == want }) {
			t.Errorf("no error starting %q in %q", want, got)
		}
	}
	if _, err := NewEngine(c); err == nil {
		t.Error("NewEngine accepted an invalid config")
	}
}
