// Package detect evaluates detection rules over the exporter's ECS
// documents and raises alerts: ECS documents of kind alert whose id is
// derived from the rule, the key and the window (or the triggering event),
// so that evaluating the same range again raises the same alerts.
//
// Every rule reads through eventstore.Reader, so one implementation serves
// the search outputs and NDJSON files alike. The definitions, terms and
// alert document are those of docs/detection.md.
package detect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore"
)

// MaxEvidence is how many event ids an alert lists at most.
const MaxEvidence = 100

// Alert is one raised alert.
type Alert struct {
	ID, RuleID, Key string
	// KeyField is the ECS field the key is a value of (user.target.name,
	// source.ip, user.target.domain, ...).
	KeyField string
	// Start and End span the window or the sequence; Time is @timestamp:
	// the window's end, or the triggering event's time.
	Start, End, Time time.Time
	Count            int      // the number the rule compared: events, users, resets
	Evidence         []string // event ids, sorted, at most MaxEvidence
	EvidenceTotal    int
	Users, IPs       []string // related.user, related.ip: sorted, distinct
	Tenants          []string // cloud.account.id of the evidence
	Rule             RuleInfo
}

// Engine evaluates the enabled rules.
type Engine struct {
	cfg   Config
	rules []rule
	roles map[string]bool
}

// rule is one rule's implementation: the range of events it reads for
// alerts anchored in [from, to), and its evaluation over those events.
type rule interface {
	id() string
	span(from, to time.Time) (time.Time, time.Time)
	eval(facts []fact, from, to time.Time) []Alert
}

// NewEngine checks cfg and returns an engine of its enabled rules.
func NewEngine(cfg Config) (*Engine, error) {
	if err := invalid(cfg.Validate()); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, roles: map[string]bool{}}
	for _, r := range cfg.Rules.PrivilegedReset.Roles {
		e.roles[strings.ToLower(r)] = true
	}
	r := cfg.Rules
	add := func(on bool, x rule) {
		if on {
			e.rules = append(e.rules, x)
		}
	}
	add(r.FailedAttempts.Enabled, failedAttempts(r.FailedAttempts))
	add(r.SprayIP.Enabled, sprayIP(r.SprayIP))
	add(r.NewCountry.Enabled, newPlaceRule(IDNewCountry, r.NewCountry, func(f *fact) string { return f.country }, "source.geo.country_iso_code"))
	add(r.NewASN.Enabled, newPlaceRule(IDNewASN, r.NewASN, func(f *fact) string { return f.asn }, "source.as.number"))
	add(r.SurgeDomain.Enabled, surge(IDSurgeDomain, r.SurgeDomain, "user.target.domain", func(f *fact) []string {
		if f.domain == "" {
			return nil
		}
		return []string{f.domain}
	}))
	add(r.SurgeGroup.Enabled, surge(IDSurgeGroup, r.SurgeGroup, "user.target.group.name", func(f *fact) []string { return f.groups }))
	add(r.ResetThenSecInfo.Enabled, resetThenSecInfo(r.ResetThenSecInfo))
	add(r.AdminSecInfoThenReset.Enabled, adminSecInfoThenReset(r.AdminSecInfoThenReset))
	add(r.AdminMassReset.Enabled, adminMassReset(r.AdminMassReset))
	add(r.PrivilegedReset.Enabled, privilegedReset{})
	return e, nil
}

// Rules describes the enabled rules, in catalog order.
func (e *Engine) Rules() []RuleInfo {
	out := make([]RuleInfo, 0, len(e.rules))
	for _, r := range e.rules {
		out = append(out, info(r.id()))
	}
	return out
}

// Span is the range of @timestamp Evaluate(from, to) reads: the history
// before from that the rules need, and the rest of the windows that start
// before to.
func (e *Engine) Span(from, to time.Time) (time.Time, time.Time) {
	var lo, hi time.Time
	for i, r := range e.rules {
		a, b := r.span(from, to)
		if i == 0 || a.Before(lo) {
			lo = a
		}
		if i == 0 || b.After(hi) {
			hi = b
		}
	}
	return lo, hi
}

// Evaluate raises the alerts whose window starts, or whose triggering
// event happened, in [from, to), reading whatever history before from the
// rules need. Alerts come sorted by time, rule and key.
func (e *Engine) Evaluate(ctx context.Context, r eventstore.Reader, from, to time.Time) ([]Alert, error) {
	if len(e.rules) == 0 || !from.Before(to) {
		return nil, nil
	}
	from, to = from.UTC(), to.UTC()
	lo, hi := e.Span(from, to)
	var facts []fact
	err := r.Scan(ctx, eventstore.Query{From: lo, To: hi}, func(ev *ecs.Event) error {
		facts = append(facts, e.fact(ev))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("detect: read events: %w", err)
	}
	var alerts []Alert
	for _, r := range e.rules {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		alerts = append(alerts, r.eval(facts, from, to)...)
	}
	for i := range alerts {
		finish(&alerts[i])
	}
	slices.SortFunc(alerts, func(a, b Alert) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		if c := strings.Compare(a.RuleID, b.RuleID); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return alerts, nil
}

// AlertID is the deterministic id of an alert: the first 128 bits of
// SHA-256 over rule id, key and anchor, in lowercase hex.
func AlertID(ruleID, key, anchor string) string {
	h := sha256.Sum256([]byte(ruleID + "\x00" + key + "\x00" + anchor))
	return hex.EncodeToString(h[:16])
}

// WindowAnchor is the anchor of a window starting at t.
func WindowAnchor(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// finish sets what every alert derives from its rule and evidence.
func finish(a *Alert) {
	a.Rule = info(a.RuleID)
	a.EvidenceTotal = len(a.Evidence)
	a.Evidence = sortedSet(a.Evidence)
	a.EvidenceTotal = len(a.Evidence)
	if len(a.Evidence) > MaxEvidence {
		a.Evidence = a.Evidence[:MaxEvidence]
	}
	a.Users = sortedSet(a.Users)
	a.IPs = sortedSet(a.IPs)
	a.Tenants = sortedSet(a.Tenants)
}

func sortedSet(s []string) []string {
	s = slices.DeleteFunc(s, func(v string) bool { return v == "" })
	slices.Sort(s)
	return slices.Compact(s)
}

// alignDown is the start of the window of length w holding t, windows
// aligned to the UTC epoch.
func alignDown(t time.Time, w time.Duration) time.Time {
	n := t.UnixNano()
	r := n % int64(w)
	if r < 0 {
		r += int64(w)
	}
	return time.Unix(0, n-r).UTC()
}

// alignUp is the start of the first window of length w starting at or after t.
func alignUp(t time.Time, w time.Duration) time.Time {
	d := alignDown(t, w)
	if d.Before(t) {
		d = d.Add(w)
	}
	return d
}

func in(t, from, to time.Time) bool { return !t.Before(from) && t.Before(to) }
