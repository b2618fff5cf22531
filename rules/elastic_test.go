package rules_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/sspr-exporter/sspr-exporter/internal/detect"
)

var update = flag.Bool("update", false, "rewrite elastic/sspr-exporter-rules.ndjson from the TOML rules")

// elasticRule is the part of a detection-rules TOML file the checks read;
// its rule table is also what the import file carries.
type elasticRule struct {
	Rule ruleBody `toml:"rule"`
}

// ruleBody is the rule table.
type ruleBody struct {
	Author      []string `toml:"author" json:"author"`
	Description string   `toml:"description" json:"description"`
	From        string   `toml:"from" json:"from"`
	Index       []string `toml:"index" json:"index"`
	Interval    string   `toml:"interval" json:"interval"`
	Language    string   `toml:"language" json:"language"`
	License     string   `toml:"license" json:"license"`
	Name        string   `toml:"name" json:"name"`
	References  []string `toml:"references" json:"references"`
	RiskScore   int      `toml:"risk_score" json:"risk_score"`
	RuleID      string   `toml:"rule_id" json:"rule_id"`
	Severity    string   `toml:"severity" json:"severity"`
	Tags        []string `toml:"tags" json:"tags"`
	Type        string   `toml:"type" json:"type"`
	Query       string   `toml:"query" json:"query"`
	Threshold   *struct {
		Field       []string `toml:"field" json:"field"`
		Value       int      `toml:"value" json:"value"`
		Cardinality []struct {
			Field string `toml:"field" json:"field"`
			Value int    `toml:"value" json:"value"`
		} `toml:"cardinality" json:"cardinality,omitempty"`
	} `toml:"threshold" json:"threshold,omitempty"`
	NewTerms *struct {
		Value              []string `toml:"value"`
		HistoryWindowStart []struct {
			Value string `toml:"value"`
		} `toml:"history_window_start"`
	} `toml:"new_terms" json:"-"`
	Threat []struct {
		Framework string `toml:"framework" json:"framework"`
		Technique []struct {
			ID           string `toml:"id" json:"id"`
			Name         string `toml:"name" json:"name"`
			Reference    string `toml:"reference" json:"reference"`
			Subtechnique []struct {
				ID        string `toml:"id" json:"id"`
				Name      string `toml:"name" json:"name"`
				Reference string `toml:"reference" json:"reference"`
			} `toml:"subtechnique" json:"subtechnique,omitempty"`
		} `toml:"technique" json:"technique"`
		Tactic struct {
			ID        string `toml:"id" json:"id"`
			Name      string `toml:"name" json:"name"`
			Reference string `toml:"reference" json:"reference"`
		} `toml:"tactic" json:"tactic"`
	} `toml:"threat" json:"threat"`
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestElasticRules: every TOML rule targets entra-sspr-*, has a unique
// rule_id, the fields its type needs, and the severity, risk score and
// ATT&CK mapping of the engine rule it stands for; every engine rule has
// one; and the import file is the TOML rules' (go test -run
// TestElasticRules -update rewrites it).
func TestElasticRules(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("elastic", "*.toml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no elastic rules: %v", err)
	}
	seen := map[string]string{}
	covered := map[string]bool{}
	var ndjson bytes.Buffer
	for _, p := range paths {
		var r elasticRule
		if _, err := toml.DecodeFile(p, &r); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		x := &r.Rule
		var id string
		for _, tag := range x.Tags {
			if s, ok := strings.CutPrefix(tag, "Rule: "); ok {
				id = s
			}
		}
		info, ok := catalogRule(id)
		if !ok {
			t.Errorf("%s: tag names no engine rule (%q)", p, id)
			continue
		}
		covered[id] = true
		if other, dup := seen[x.RuleID]; dup || !uuidRE.MatchString(x.RuleID) {
			t.Errorf("%s: rule_id %q not a unique UUID (also %s)", p, x.RuleID, other)
		}
		seen[x.RuleID] = p
		if !slices.Equal(x.Index, []string{"entra-sspr-*"}) || x.Query == "" || x.Name == "" || x.Description == "" {
			t.Errorf("%s: index %v, name, description and query needed", p, x.Index)
		}
		if x.Severity != info.Severity || x.RiskScore != detect.SeverityScore(info.Severity) {
			t.Errorf("%s: severity %s/%d, engine %s/%d", p, x.Severity, x.RiskScore, info.Severity, detect.SeverityScore(info.Severity))
		}
		if len(x.Threat) != 1 || len(x.Threat[0].Technique) != 1 || x.Threat[0].Tactic.ID != info.Tactic.ID || x.Threat[0].Technique[0].ID != info.Technique.ID {
			t.Errorf("%s: threat %+v, engine %s %s", p, x.Threat, info.Tactic.ID, info.Technique.ID)
		} else if subs := x.Threat[0].Technique[0].Subtechnique; info.Subtechnique.ID != "" && (len(subs) != 1 || subs[0].ID != info.Subtechnique.ID) {
			t.Errorf("%s: subtechnique %+v, engine %s", p, subs, info.Subtechnique.ID)
		}
		switch x.Type {
		case "threshold":
			if x.Threshold == nil || len(x.Threshold.Field) != 1 || x.Threshold.Value < 1 {
				t.Errorf("%s: threshold rule without a threshold", p)
			}
		case "new_terms":
			if x.NewTerms == nil || len(x.NewTerms.Value) != 2 || len(x.NewTerms.HistoryWindowStart) != 1 {
				t.Errorf("%s: new_terms rule without fields and history", p)
			}
		case "eql":
			if x.Language != "eql" || !strings.HasPrefix(x.Query, "sequence by ") {
				t.Errorf("%s: eql rule is not a sequence", p)
			}
		case "query":
		default:
			t.Errorf("%s: type %q", p, x.Type)
		}
		ndjson.Write(importObject(t, x))
		ndjson.WriteByte('\n')
	}
	for _, info := range detect.Catalog() {
		if !covered[info.ID] {
			t.Errorf("no Elastic rule for %s", info.ID)
		}
	}
	golden := filepath.Join("elastic", "sspr-exporter-rules.ndjson")
	if *update {
		if err := os.WriteFile(golden, ndjson.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, ndjson.Bytes()) {
		t.Errorf("%s is not the TOML rules' import file: run go test ./rules -run TestElasticRules -update", golden)
	}
}

func catalogRule(id string) (detect.RuleInfo, bool) {
	for _, r := range detect.Catalog() {
		if r.ID == id {
			return r, true
		}
	}
	return detect.RuleInfo{}, false
}

// importObject is the rule as the detection engine's import API takes it,
// disabled until the user turns it on.
func importObject(t *testing.T, x *ruleBody) []byte {
	t.Helper()
	x.Query = strings.TrimSpace(x.Query)
	b, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["enabled"], m["version"], m["max_signals"] = false, 1, 100
	if x.NewTerms != nil {
		m["new_terms_fields"] = x.NewTerms.Value
		if len(x.NewTerms.HistoryWindowStart) > 0 {
			m["history_window_start"] = x.NewTerms.HistoryWindowStart[0].Value
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
