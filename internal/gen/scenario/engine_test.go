package scenario_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/detect"
	"github.com/sspr-exporter/sspr-exporter/internal/gen/scenario"
)

// evaluate runs the built-in engine over the stream.
func evaluate(t *testing.T, s *scenario.Stream) ([]detect.Alert, []string) {
	t.Helper()
	alerts, rules, err := scenario.Detect(context.Background(), s, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return alerts, rules
}

func generate(t *testing.T, o scenario.Options) *scenario.Stream {
	t.Helper()
	s, err := scenario.Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAttackScenarios: each attack scenario raises the alert its labels
// expect, for the labelled key and window or events, and nothing else.
func TestAttackScenarios(t *testing.T) {
	for i, name := range scenario.Attacks {
		for _, seed := range []uint64{uint64(i + 1)} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				// A smaller tenant over three weeks: the attack and its
				// history are the same, the test a third of the cost.
				s := generate(t, scenario.Options{Scenario: name, Seed: seed, Users: 1500, Days: 21})
				if len(s.Labels) == 0 {
					t.Fatal("no labels")
				}
				alerts, _ := evaluate(t, s)
				for _, l := range s.Labels {
					found := false
					for _, a := range alerts {
						found = found || scenario.Matches(l, a)
					}
					if !found {
						t.Errorf("seed %d: no %s alert for %s in [%s, %s]", seed, l.Rule, l.Key, l.Start, l.End)
					}
				}
				for _, a := range alerts {
					matched := false
					for _, l := range s.Labels {
						matched = matched || scenario.Matches(l, a)
					}
					if !matched {
						t.Errorf("seed %d: unexpected %s alert for %s at %s (%d evidence)", seed, a.RuleID, a.Key, a.Start, a.EvidenceTotal)
					}
				}
			})
		}
	}
}

// TestBenignRaisesNothing: weeks of normal traffic raise no alert at all,
// whatever the seed.
func TestBenignRaisesNothing(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		s := generate(t, scenario.Options{Scenario: scenario.Benign, Seed: seed})
		alerts, _ := evaluate(t, s)
		for _, a := range alerts {
			t.Errorf("seed %d: %s alert for %s at %s, evidence %v", seed, a.RuleID, a.Key, a.Start, a.Evidence[:min(3, len(a.Evidence))])
		}
	}
}

// TestMonthPrecisionRecall: on a month with every attack injected twice,
// every rule finds every injected attack (recall 1) and raises no alert
// outside them (precision 1). -v prints the table.
func TestMonthPrecisionRecall(t *testing.T) {
	s := generate(t, scenario.Options{Scenario: scenario.Month, Seed: 1})
	alerts, rules := evaluate(t, s)
	scores := scenario.Evaluate(rules, s.Labels, alerts)
	var b strings.Builder
	if err := scenario.WriteTable(&b, scores); err != nil {
		t.Fatal(err)
	}
	t.Logf("month, seed 1, %d documents:\n%s", len(s.Docs), b.String())
	for _, sc := range scores {
		if sc.Injected == 0 {
			t.Errorf("%s: no attack injected", sc.Rule)
		}
		if sc.Recall() < 1 {
			t.Errorf("%s: recall %.2f, want 1", sc.Rule, sc.Recall())
		}
		if sc.TruePositives != sc.Alerts {
			t.Errorf("%s: %d alerts outside the injected attacks", sc.Rule, sc.Alerts-sc.TruePositives)
		}
	}
}
