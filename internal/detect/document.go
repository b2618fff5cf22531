package detect

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
)

// Dataset is event.dataset of every alert.
const Dataset = "entra.sspr.alert"

// IndexPrefix is the default prefix of the alerts indices.
const IndexPrefix = "entra-sspr-alerts"

// Index is the monthly index an alert goes to: prefix-YYYY.MM of @timestamp.
func Index(prefix string, a *Alert) string {
	return prefix + "-" + a.Time.UTC().Format("2006.01")
}

// document is the ECS alert document.
type document struct {
	Timestamp string        `json:"@timestamp"`
	ECS       ecs.ECSMeta   `json:"ecs"`
	Event     docEvent      `json:"event"`
	Rule      docRule       `json:"rule"`
	Threat    docThreat     `json:"threat"`
	Related   ecs.Related   `json:"related,omitzero"`
	Cloud     *docCloud     `json:"cloud,omitempty"`
	User      *docUser      `json:"user,omitempty"`
	Source    *docSource    `json:"source,omitempty"`
	Entra     docEntraAlert `json:"entra"`
}

type docEvent struct {
	Kind      string   `json:"kind"`
	Category  []string `json:"category"`
	Type      []string `json:"type"`
	Dataset   string   `json:"dataset"`
	ID        string   `json:"id"`
	Start     string   `json:"start"`
	End       string   `json:"end"`
	Severity  int      `json:"severity"`
	RiskScore float64  `json:"risk_score"`
}

type docRule struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Version     string `json:"version"`
	Ruleset     string `json:"ruleset"`
	Reference   string `json:"reference"`
}

type docRef struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Reference string `json:"reference"`
}

type docTechnique struct {
	docRef
	Subtechnique *docRef `json:"subtechnique,omitempty"`
}

type docThreat struct {
	Framework string       `json:"framework"`
	Tactic    docRef       `json:"tactic"`
	Technique docTechnique `json:"technique"`
}

type docCloud struct {
	Account struct {
		ID string `json:"id"`
	} `json:"account"`
}

type docUser struct {
	Name   string         `json:"name,omitempty"`
	ID     string         `json:"id,omitempty"`
	Target map[string]any `json:"target,omitempty"`
}

type docSource struct {
	IP string `json:"ip"`
}

type docEntraAlert struct {
	SSPR struct {
		Alert docAlert `json:"alert"`
	} `json:"sspr"`
}

type docAlert struct {
	Key           string   `json:"key"`
	Field         string   `json:"key_field,omitempty"`
	Count         int      `json:"count"`
	Evidence      []string `json:"evidence"`
	EvidenceTotal int      `json:"evidence_total"`
}

func ref(a ATTACK) docRef { return docRef{ID: a.ID, Name: a.Name, Reference: a.Reference()} }

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// MarshalJSON encodes the alert as its ECS document.
func (a Alert) MarshalJSON() ([]byte, error) {
	r := a.Rule
	if r.ID == "" {
		r = info(a.RuleID)
	}
	d := document{
		Timestamp: rfc(a.Time),
		ECS:       ecs.ECSMeta{Version: ecs.Version},
		Event: docEvent{
			Kind: ecs.KindAlert, Category: []string{"iam"}, Type: []string{"info"}, Dataset: Dataset, ID: a.ID,
			Start: rfc(a.Start), End: rfc(a.End),
			Severity: SeverityScore(r.Severity), RiskScore: float64(SeverityScore(r.Severity)),
		},
		Rule: docRule{ID: r.ID, Name: r.Name, Description: r.Description, Version: r.Version, Ruleset: Ruleset, Reference: Reference + r.ID},
		Threat: docThreat{Framework: "MITRE ATT&CK", Tactic: ref(r.Tactic),
			Technique: docTechnique{docRef: ref(r.Technique)}},
		Related: ecs.Related{User: a.Users, IP: a.IPs},
	}
	if r.Subtechnique.ID != "" {
		s := ref(r.Subtechnique)
		d.Threat.Technique.Subtechnique = &s
	}
	// cloud.account.id is one value, as in the event documents (a reader
	// of the event indices may meet alerts too); an alert whose evidence
	// spans tenants leaves it out.
	if len(a.Tenants) == 1 {
		d.Cloud = &docCloud{}
		d.Cloud.Account.ID = a.Tenants[0]
	}
	// The key goes into the ECS field it is a value of.
	switch f := a.KeyField; {
	case f == "source.ip":
		d.Source = &docSource{IP: a.Key}
	case f == "user.name":
		d.User = &docUser{Name: a.Key}
	case f == "user.id":
		d.User = &docUser{ID: a.Key}
	case strings.HasPrefix(f, "user.target."):
		leaf := strings.TrimPrefix(f, "user.target.")
		t := map[string]any{}
		if g, ok := strings.CutPrefix(leaf, "group."); ok {
			t["group"] = map[string][]string{g: {a.Key}} // a list, as in the event documents
		} else {
			t[leaf] = a.Key
		}
		d.User = &docUser{Target: t}
	}
	al := &d.Entra.SSPR.Alert
	al.Key, al.Field, al.Count, al.EvidenceTotal = a.Key, a.KeyField, a.Count, a.EvidenceTotal
	al.Evidence = a.Evidence
	if al.Evidence == nil {
		al.Evidence = []string{}
	}
	return json.Marshal(d)
}
