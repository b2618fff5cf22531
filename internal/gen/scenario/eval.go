package scenario

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/sspr-exporter/sspr-exporter/internal/detect"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore"
)

// Detect writes the stream into dir as the file output would, reads it
// back through eventstore and runs the built-in engine with its default
// configuration over the stream's whole span. It returns the alerts and
// the ids of the rules evaluated.
func Detect(ctx context.Context, s *Stream, dir string) ([]detect.Alert, []string, error) {
	path := filepath.Join(dir, "sspr.ndjson")
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	if err := s.WriteECS(f); err != nil {
		f.Close()
		return nil, nil, err
	}
	if err := f.Close(); err != nil {
		return nil, nil, err
	}
	r, err := eventstore.NewFiles(path)
	if err != nil {
		return nil, nil, err
	}
	e, err := detect.NewEngine(detect.DefaultConfig())
	if err != nil {
		return nil, nil, err
	}
	alerts, err := e.Evaluate(ctx, r, s.From, s.To)
	if err != nil {
		return nil, nil, fmt.Errorf("scenario: evaluate: %w", err)
	}
	var rules []string
	for _, ri := range e.Rules() {
		rules = append(rules, ri.ID)
	}
	return alerts, rules, nil
}

// Score is how one rule did on a stream.
type Score struct {
	Rule          string
	Injected      int // labels of the rule
	Found         int // labels an alert of the rule matched
	Alerts        int // alerts the rule raised
	TruePositives int // alerts that matched a label
}

// Precision is true positives over alerts (1 when there were none).
func (s Score) Precision() float64 {
	if s.Alerts == 0 {
		return 1
	}
	return float64(s.TruePositives) / float64(s.Alerts)
}

// Recall is labels found over labels injected (1 when none were).
func (s Score) Recall() float64 {
	if s.Injected == 0 {
		return 1
	}
	return float64(s.Found) / float64(s.Injected)
}

// Matches reports whether alert a is the one label l expects: same rule and
// key (case-insensitive), the same window for windowed rules, and for the
// others evidence that includes one of the label's events.
func Matches(l Label, a detect.Alert) bool {
	if a.RuleID != l.Rule || !strings.EqualFold(a.Key, l.Key) {
		return false
	}
	if l.Windowed {
		return a.Start.Equal(l.Start) && a.End.Equal(l.End)
	}
	for _, id := range a.Evidence {
		if slices.Contains(l.EventIDs, id) {
			return true
		}
	}
	return false
}

// Evaluate scores each rule's alerts against the labels, in the order of
// rules.
func Evaluate(rules []string, labels []Label, alerts []detect.Alert) []Score {
	var out []Score
	for _, r := range rules {
		s := Score{Rule: r}
		for _, l := range labels {
			if l.Rule != r {
				continue
			}
			s.Injected++
			if slices.ContainsFunc(alerts, func(a detect.Alert) bool { return Matches(l, a) }) {
				s.Found++
			}
		}
		for _, a := range alerts {
			if a.RuleID != r {
				continue
			}
			s.Alerts++
			if slices.ContainsFunc(labels, func(l Label) bool { return Matches(l, a) }) {
				s.TruePositives++
			}
		}
		out = append(out, s)
	}
	return out
}

// WriteTable writes scores as a Markdown table.
func WriteTable(w io.Writer, scores []Score) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "| rule\t| attacks injected\t| found\t| alerts raised\t| true positives\t| precision\t| recall\t|")
	fmt.Fprintln(tw, "|---\t|---\t|---\t|---\t|---\t|---\t|---\t|")
	for _, s := range scores {
		fmt.Fprintf(tw, "| %s\t| %d\t| %d\t| %d\t| %d\t| %.2f\t| %.2f\t|\n", s.Rule, s.Injected, s.Found, s.Alerts, s.TruePositives, s.Precision(), s.Recall())
	}
	return tw.Flush()
}
