package detect

import (
	"context"
	"testing"
)

func TestDefaultConfigValidAndEveryRuleEnabled(t *testing.T) {
	if errs := DefaultConfig().Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	e, err := NewEngine(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got := len(e.Rules()); got != len(catalog) || got != 10 {
		t.Errorf("%d rules enabled, want all 10", got)
	}
	for _, r := range e.Rules() {
		if r.Name == "" || r.Description == "" || SeverityScore(r.Severity) == 0 || r.Tactic.ID == "" || r.Technique.ID == "" || r.Version == "" {
			t.Errorf("rule %s incomplete: %+v", r.ID, r)
		}
	}
}

func TestFailedAttemptsSmoke(t *testing.T) {
	e, err := NewEngine(only(IDFailedAttempts))
	if err != nil {
		t.Fatal(err)
	}
	docs := mem(n("f", 5, t0, 1, "password-reset", "failure", same("a@x.example")))
	alerts, err := e.Evaluate(context.Background(), docs, t0, t0.Add(1))
	if err != nil || len(alerts) != 1 {
		t.Fatalf("alerts %v, %v", alerts, err)
	}
}
