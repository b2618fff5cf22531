package detect

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore"
)

// mem is a Reader over documents held in memory, scanned as every reader
// scans: matching the query, by time then id.
type mem []ecs.Event

func (m mem) Scan(ctx context.Context, q eventstore.Query, fn func(*ecs.Event) error) error {
	docs := slices.Clone(m)
	slices.SortFunc(docs, func(a, b ecs.Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return compare(a.Event.ID, b.Event.ID)
	})
	for i := range docs {
		if q.Match(&docs[i]) {
			if err := fn(&docs[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (mem) Describe() eventstore.Source { return eventstore.Source{Kind: "memory"} }

var t0 = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

// ev builds a document; opts set the rest.
func ev(id string, at time.Time, action, outcome, user string, opts ...func(*ecs.Event)) ecs.Event {
	e := ecs.Event{Event: ecs.EventMeta{ID: id, Action: action, Outcome: outcome, Kind: "event", Dataset: ecs.Dataset}}
	e.Time = at.UTC()
	e.Timestamp = e.Time.Format(time.RFC3339Nano)
	e.User.Target.Name = user
	e.Cloud.Account.ID = "tenant-1"
	for _, o := range opts {
		o(&e)
	}
	return e
}

func ip(v string) func(*ecs.Event) { return func(e *ecs.Event) { e.Source.IP = v } }
func country(v string) func(*ecs.Event) {
	return func(e *ecs.Event) { e.Source.Geo.CountryISOCode = v }
}
func asn(n int64) func(*ecs.Event)   { return func(e *ecs.Event) { e.Source.AS.Number = n } }
func flow(v string) func(*ecs.Event) { return func(e *ecs.Event) { e.Entra.SSPR.Flow.ID = v } }
func initiator(v string) func(*ecs.Event) {
	return func(e *ecs.Event) { e.Entra.SSPR.Initiator = v }
}
func domain(v string) func(*ecs.Event) { return func(e *ecs.Event) { e.User.Target.Domain = v } }
func groups(v ...string) func(*ecs.Event) {
	return func(e *ecs.Event) { e.User.Target.Group.Name = v }
}
func roles(v ...string) func(*ecs.Event) { return func(e *ecs.Event) { e.User.Target.Roles = v } }
func admin(v string) func(*ecs.Event)    { return func(e *ecs.Event) { e.User.Name = v } }
func targetID(v string) func(*ecs.Event) {
	return func(e *ecs.Event) { e.User.Target.Name = ""; e.User.Target.ID = v }
}

// only returns a config with just the named rule enabled.
func only(id string, edit ...func(*Config)) Config {
	c := DefaultConfig()
	r := &c.Rules
	r.FailedAttempts.Enabled = id == IDFailedAttempts
	r.SprayIP.Enabled = id == IDSprayIP
	r.NewCountry.Enabled = id == IDNewCountry
	r.NewASN.Enabled = id == IDNewASN
	r.SurgeDomain.Enabled = id == IDSurgeDomain
	r.SurgeGroup.Enabled = id == IDSurgeGroup
	r.ResetThenSecInfo.Enabled = id == IDResetThenSecInfo
	r.AdminSecInfoThenReset.Enabled = id == IDAdminSecInfoThenReset
	r.AdminMassReset.Enabled = id == IDAdminMassReset
	r.PrivilegedReset.Enabled = id == IDPrivilegedReset
	for _, e := range edit {
		e(&c)
	}
	return c
}

// n builds count documents with ids prefix-0.., one step apart from at.
func n(prefix string, count int, at time.Time, step time.Duration, action, outcome string, user func(i int) string, opts ...func(*ecs.Event)) []ecs.Event {
	var out []ecs.Event
	for i := range count {
		out = append(out, ev(fmt.Sprintf("%s-%03d", prefix, i), at.Add(time.Duration(i)*step), action, outcome, user(i), opts...))
	}
	return out
}

func same(v string) func(int) string { return func(int) string { return v } }
func each(format string) func(int) string {
	return func(i int) string { return fmt.Sprintf(format, i) }
}
