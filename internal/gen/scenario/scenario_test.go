package scenario

import (
	"bytes"
	"slices"
	"testing"
)

// TestDeterministic: the same options give the same bytes, another seed
// other bytes.
func TestDeterministic(t *testing.T) {
	write := func(seed uint64) []byte {
		s, err := Generate(Options{Scenario: Month, Seed: seed, Users: 2000})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := s.WriteECS(&b); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteLabels(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	a, b, c := write(7), write(7), write(8)
	if !bytes.Equal(a, b) {
		t.Error("same seed, different streams")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds, same stream")
	}
}

// TestLabels: each attack scenario labels the rules it targets, and every
// labelled event id is a document of the stream inside the label's span.
func TestLabels(t *testing.T) {
	want := map[string][]string{
		"failed-burst":             {"sspr-failed-attempts"},
		"spray":                    {"sspr-spray-ip"},
		"new-country":              {"sspr-new-asn", "sspr-new-country"},
		"new-asn":                  {"sspr-new-asn"},
		"surge-domain":             {"sspr-surge-domain"},
		"surge-group":              {"sspr-surge-group"},
		"reset-then-secinfo":       {"sspr-reset-then-secinfo"},
		"admin-secinfo-then-reset": {"sspr-admin-secinfo-then-reset"},
		"admin-mass-reset":         {"sspr-admin-mass-reset"},
		"privileged-reset":         {"sspr-privileged-reset"},
		Benign:                     nil,
	}
	for name, rules := range want {
		t.Run(name, func(t *testing.T) {
			s, err := Generate(Options{Scenario: name, Seed: 1, Users: 1000})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			docs := map[string]int{}
			for i := range s.Docs {
				docs[s.Docs[i].Event.ID] = i
			}
			for _, l := range s.Labels {
				if !slices.Contains(got, l.Rule) {
					got = append(got, l.Rule)
				}
				if len(l.EventIDs) == 0 {
					t.Errorf("%s: no event ids", l.Rule)
				}
				for _, id := range l.EventIDs {
					i, ok := docs[id]
					if !ok {
						t.Fatalf("%s: event %s not in the stream", l.Rule, id)
					}
					ts := s.Docs[i].Time
					if ts.Before(l.Start) || l.Windowed && !ts.Before(l.End) || !l.Windowed && ts.After(l.End) {
						t.Errorf("%s: event %s at %s outside [%s, %s]", l.Rule, id, ts, l.Start, l.End)
					}
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, rules) {
				t.Errorf("rules labelled %v, want %v", got, rules)
			}
		})
	}
}

// TestBenignShape: benign traffic never resets a privileged account, and
// each document has the enriched fields the rules read.
func TestBenignShape(t *testing.T) {
	s, err := Generate(Options{Scenario: Benign, Seed: 3, Users: 1000})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for i := range s.Docs {
		d := &s.Docs[i]
		actions[d.Event.Action]++
		if d.Source.Geo.CountryISOCode == "" || d.Source.AS.Number == 0 || len(d.User.Target.Group.Name) == 0 {
			t.Fatalf("%s: enrichment missing", d.Event.ID)
		}
		if len(d.User.Target.Roles) > 0 && d.User.Target.Roles[0] != "Directory Readers" && d.User.Target.Roles[0] != "Reports Reader" &&
			d.User.Target.Roles[0] != "Message Center Reader" && d.User.Target.Roles[0] != "Usage Summary Reports Reader" &&
			(d.Event.Action == "password-reset" || d.Event.Action == "password-reset-by-admin") {
			t.Errorf("%s: privileged %s reset in benign traffic", d.Event.ID, d.User.Target.Name)
		}
	}
	for _, a := range []string{"password-reset", "password-reset-progress", "password-reset-by-admin", "security-info-registered", "admin-security-info-registered", "password-reset-blocked", "account-unlock"} {
		if actions[a] == 0 {
			t.Errorf("no %s in 28 days: %v", a, actions)
		}
	}
}

// BenchmarkGenerateMonth: a month of a 3000-user tenant with every attack,
// each record through the exporter's normalization.
func BenchmarkGenerateMonth(b *testing.B) {
	for range b.N {
		s, err := Generate(Options{Scenario: Month, Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(s.Docs)), "docs/op")
	}
}
