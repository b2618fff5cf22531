package alertindex

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/detect"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/elasticsearch"
)

var update = flag.Bool("update", false, "rewrite deploy/alerts from Assets(detect.IndexPrefix)")

const deployDir = "../../../deploy/alerts"

// sample is an alert of every key field, with every optional part set.
func samples() []detect.Alert {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	var out []detect.Alert
	for _, c := range []struct{ rule, field string }{
		{detect.IDSprayIP, "source.ip"}, {detect.IDFailedAttempts, "user.target.name"}, {detect.IDFailedAttempts, "user.target.id"},
		{detect.IDSurgeDomain, "user.target.domain"}, {detect.IDSurgeGroup, "user.target.group.name"},
		{detect.IDAdminMassReset, "user.name"}, {detect.IDAdminMassReset, "user.id"},
	} {
		out = append(out, detect.Alert{ID: "id", RuleID: c.rule, Key: "192.0.2.1", KeyField: c.field, Start: at, End: at, Time: at,
			Count: 1, Evidence: []string{"e"}, EvidenceTotal: 1, Users: []string{"u"}, IPs: []string{"192.0.2.1"}, Tenants: []string{"t"}})
	}
	return out
}

// leaves lists the dotted paths of the values of a JSON object.
func leaves(prefix string, v any, out map[string]bool) {
	if m, ok := v.(map[string]any); ok {
		for k, x := range m {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			leaves(p, x, out)
		}
		return
	}
	out[prefix] = true
}

// mappedType is the type of a dotted field in mappings, or "".
func mappedType(m map[string]any, field string) string {
	cur := m
	for part := range strings.SplitSeq(field, ".") {
		props, _ := cur["properties"].(map[string]any)
		next, ok := props[part].(map[string]any)
		if !ok {
			return ""
		}
		cur = next
	}
	t, _ := cur["type"].(string)
	return t
}

func TestMappingsCoverTheDocumentWithECSTypes(t *testing.T) {
	m := Mappings()
	emitted := map[string]bool{}
	for _, a := range samples() {
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		json.Unmarshal(b, &doc)
		leaves("", doc, emitted)
	}
	if len(emitted) < 35 {
		t.Fatalf("only %d fields emitted", len(emitted))
	}
	for f := range emitted {
		if mappedType(m, f) == "" {
			t.Errorf("%s is emitted but not mapped", f)
		}
	}
	f, err := os.Open("testdata/ecs-fields.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows[1:] {
		field, typ := r[3], r[4]
		if !emitted[field] {
			t.Errorf("ECS field %s listed but not emitted", field)
		}
		if got := mappedType(m, field); got != typ {
			t.Errorf("%s mapped as %s, ECS says %s", field, got, typ)
		}
	}
	if m["dynamic"] != false {
		t.Error("dynamic must be false")
	}
}

func TestAssetsOutrankTheEventTemplate(t *testing.T) {
	assets, err := Assets(detect.IndexPrefix)
	if err != nil {
		t.Fatal(err)
	}
	events, err := elasticsearch.Assets(elasticsearch.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	priority := func(body []byte) (float64, []any) {
		var m map[string]any
		json.Unmarshal(body, &m)
		p, _ := m["priority"].(float64)
		pats, _ := m["index_patterns"].([]any)
		return p, pats
	}
	mine, pats := priority(assets[len(assets)-1].Body)
	theirs, theirPats := priority(events[len(events)-1].Body)
	if mine <= theirs {
		t.Errorf("alerts template priority %v not above the events template's %v", mine, theirs)
	}
	// The events pattern entra-sspr-* matches the alerts indices: the
	// priority is what keeps the alert mappings there.
	if len(pats) != 1 || pats[0] != "entra-sspr-alerts-*" || len(theirPats) != 1 || theirPats[0] != "entra-sspr-*" {
		t.Errorf("patterns %v and %v", pats, theirPats)
	}
}

// TestDeployFilesMatchSetup keeps deploy/alerts equal to what Setup
// installs, for those who install templates by hand.
func TestDeployFilesMatchSetup(t *testing.T) {
	assets, err := Assets(detect.IndexPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		os.MkdirAll(deployDir, 0o755)
		for _, a := range assets {
			if err := os.WriteFile(filepath.Join(deployDir, a.FileName()), a.Body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var want []string
	for _, a := range assets {
		want = append(want, a.FileName())
		got, err := os.ReadFile(filepath.Join(deployDir, a.FileName()))
		if err != nil || !bytes.Equal(got, a.Body) {
			t.Errorf("%s differs from what setup installs (go test ./internal/detect/alertindex -update): %v", a.FileName(), err)
		}
	}
	entries, _ := os.ReadDir(deployDir)
	var have []string
	for _, e := range entries {
		have = append(have, e.Name())
	}
	sort.Strings(want)
	if strings.Join(have, ",") != strings.Join(want, ",") {
		t.Errorf("deploy/alerts holds %v, want %v", have, want)
	}
}
