package detect

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
)

type ruleCase struct {
	name     string
	cfg      func(*Config)
	docs     []ecs.Event
	from, to time.Time // zero: the hour [t0, t0+1h)
	want     []string  // key@count of each alert, in order
}

func runCases(t *testing.T, id string, cases []ruleCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var edits []func(*Config)
			if c.cfg != nil {
				edits = append(edits, c.cfg)
			}
			e, err := NewEngine(only(id, edits...))
			if err != nil {
				t.Fatal(err)
			}
			from, to := c.from, c.to
			if from.IsZero() {
				from, to = t0, t0.Add(time.Hour)
			}
			alerts, err := e.Evaluate(context.Background(), mem(c.docs), from, to)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range alerts {
				if a.RuleID != id {
					t.Errorf("alert of rule %s", a.RuleID)
				}
				got = append(got, a.Key+"@"+itoa(a.Count))
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("alerts %v, want %v", got, c.want)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func cat(groups ...[]ecs.Event) []ecs.Event { return slices.Concat(groups...) }

func TestFailedAttempts(t *testing.T) {
	u := same("a@x.example")
	runCases(t, IDFailedAttempts, []ruleCase{
		{name: "threshold-1 raises nothing", docs: n("f", 4, t0, time.Minute, "password-reset", "failure", u)},
		{name: "threshold raises", docs: n("f", 5, t0, time.Minute, "password-reset", "failure", u), want: []string{"a@x.example@5"}},
		{name: "blocked counts whatever the outcome", docs: n("f", 5, t0, time.Minute, "password-reset-blocked", "success", u), want: []string{"a@x.example@5"}},
		{name: "each failure action counts", docs: cat(
			n("a", 2, t0, time.Minute, "password-reset-progress", "failure", u),
			n("b", 1, t0, time.Minute, "password-reset-started", "failure", u),
			n("c", 1, t0, time.Minute, "account-unlock", "failure", u),
			n("d", 1, t0, time.Minute, "password-reset", "failure", u)), want: []string{"a@x.example@5"}},
		{name: "successes and other actions do not count", docs: cat(
			n("a", 4, t0, time.Minute, "password-reset", "failure", u),
			n("b", 3, t0, time.Minute, "password-reset", "success", u),
			n("c", 3, t0, time.Minute, "security-info-registered", "failure", u))},
		{name: "window edges: 4 before the hour, 4 in it", docs: cat(
			n("a", 4, t0.Add(-4*time.Minute), time.Minute, "password-reset", "failure", u),
			n("b", 4, t0, time.Minute, "password-reset", "failure", u))},
		{name: "event at the window end belongs to the next window", docs: cat(
			n("a", 4, t0, time.Minute, "password-reset", "failure", u),
			n("b", 1, t0.Add(time.Hour), 0, "password-reset", "failure", u))},
		{name: "keys are case-sensitive as stored", docs: cat(
			n("a", 3, t0, time.Minute, "password-reset", "failure", u),
			n("b", 2, t0, time.Minute, "password-reset", "failure", same("A@X.example")))},
		{name: "target id when no name", docs: n("f", 5, t0, time.Minute, "password-reset", "failure", same(""), targetID("0000-id")), want: []string{"0000-id@5"}},
		{name: "threshold from config", cfg: func(c *Config) { c.Rules.FailedAttempts.Threshold = 3 },
			docs: n("f", 3, t0, time.Minute, "password-reset", "failure", u), want: []string{"a@x.example@3"}},
		{name: "window from config: 2h windows join", cfg: func(c *Config) { c.Rules.FailedAttempts.Window = 2 * time.Hour },
			from: t0, to: t0.Add(2 * time.Hour),
			docs: n("f", 5, t0, 20*time.Minute, "password-reset", "failure", u), want: []string{"a@x.example@5"}},
		{name: "no user raises nothing", docs: n("f", 5, t0, time.Minute, "password-reset", "failure", same(""))},
	})
}

func TestSprayIP(t *testing.T) {
	runCases(t, IDSprayIP, []ruleCase{
		{name: "threshold-1 distinct users", docs: cat(
			n("a", 4, t0, time.Minute, "password-reset", "failure", each("u%d@x.example"), ip("192.0.2.7")),
			n("b", 4, t0, time.Minute, "password-reset", "failure", each("u%d@x.example"), ip("192.0.2.7")))},
		{name: "threshold distinct users", docs: n("a", 5, t0, time.Minute, "password-reset-blocked", "", each("u%d@x.example"), ip("192.0.2.7")),
			want: []string{"192.0.2.7@5"}},
		{name: "users differing in case are distinct keys", docs: cat(
			n("a", 4, t0, time.Minute, "password-reset", "failure", each("u%d@x.example"), ip("192.0.2.7")),
			n("b", 1, t0, time.Minute, "password-reset", "failure", same("U0@x.example"), ip("192.0.2.7"))),
			want: []string{"192.0.2.7@5"}},
		{name: "no ip raises nothing", docs: n("a", 6, t0, time.Minute, "password-reset", "failure", each("u%d@x.example"))},
		{name: "split over two windows", docs: cat(
			n("a", 3, t0.Add(-3*time.Minute), time.Minute, "password-reset", "failure", each("u%d@x.example"), ip("192.0.2.7")),
			n("b", 3, t0, time.Minute, "password-reset", "failure", each("v%d@x.example"), ip("192.0.2.7")))},
	})
}

func TestNewCountry(t *testing.T) {
	u := "a@x.example"
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	runCases(t, IDNewCountry, []ruleCase{
		{name: "new country raises", docs: []ecs.Event{
			ev("h1", at(-48*time.Hour), "password-reset-progress", "success", u, country("DE")),
			ev("r1", at(time.Minute), "password-reset", "success", u, country("BR"))}, want: []string{u + "@1"}},
		{name: "known country raises nothing", docs: []ecs.Event{
			ev("h1", at(-48*time.Hour), "security-info-registered", "success", u, country("DE")),
			ev("r1", at(time.Minute), "password-reset", "success", u, country("DE"))}},
		{name: "no earlier geo event raises nothing", docs: []ecs.Event{
			ev("h1", at(-48*time.Hour), "password-reset", "success", u),
			ev("r1", at(time.Minute), "password-reset", "success", u, country("BR"))}},
		{name: "reset without geo raises nothing", docs: []ecs.Event{
			ev("h1", at(-48*time.Hour), "password-reset", "success", u, country("DE")),
			ev("r1", at(time.Minute), "password-reset", "success", u)}},
		{name: "failed reset raises nothing", docs: []ecs.Event{
			ev("h1", at(-48*time.Hour), "password-reset", "success", u, country("DE")),
			ev("r1", at(time.Minute), "password-reset", "failure", u, country("BR"))}},
		{name: "history edge: exactly 90d before is history", docs: []ecs.Event{
			ev("h1", at(time.Minute-90*day), "password-reset", "success", u, country("DE")),
			ev("r1", at(time.Minute), "password-reset", "success", u, country("BR"))}, want: []string{u + "@1"}},
		{name: "history edge: the known country just outside counts as new", docs: []ecs.Event{
			ev("h0", at(time.Minute-90*day-time.Second), "password-reset", "success", u, country("BR")),
			ev("h1", at(-time.Hour), "password-reset", "success", u, country("DE")),
			ev("r1", at(time.Minute), "password-reset", "success", u, country("BR"))}, want: []string{u + "@1"}},
		{name: "history edge: earlier events only outside raise nothing", docs: []ecs.Event{
			ev("h0", at(time.Minute-90*day-time.Second), "password-reset", "success", u, country("DE")),
			ev("r1", at(time.Minute), "password-reset", "success", u, country("BR"))}},
		{name: "another user's country does not count", docs: []ecs.Event{
			ev("h1", at(-time.Hour), "password-reset", "success", u, country("DE")),
			ev("h2", at(-time.Hour), "password-reset", "success", "b@x.example", country("BR")),
			ev("r1", at(time.Minute), "password-reset", "success", u, country("BR"))}, want: []string{u + "@1"}},
		{name: "reset before from is not raised", from: t0, to: t0.Add(time.Hour), docs: []ecs.Event{
			ev("h1", at(-2*time.Hour), "password-reset", "success", u, country("DE")),
			ev("r1", at(-time.Minute), "password-reset", "success", u, country("BR"))}},
		{name: "the reset's own flow steps from the new country do not make it known", docs: []ecs.Event{
			ev("h1", at(-48*time.Hour), "password-reset-progress", "success", u, country("DE"), flow("f0")),
			ev("s1", at(-2*time.Minute), "password-reset-progress", "success", u, country("BR"), flow("f1")),
			ev("s2", at(-time.Minute), "password-reset-progress", "success", u, country("BR"), flow("f1")),
			ev("r1", at(time.Minute), "password-reset", "success", u, country("BR"), flow("f1"))}, want: []string{u + "@1"}},
		{name: "a flow's own steps are not the history it needs", docs: []ecs.Event{
			ev("s1", at(-time.Minute), "password-reset-progress", "success", u, country("DE"), flow("f1")),
			ev("r1", at(time.Minute), "password-reset", "success", u, country("BR"), flow("f1"))}},
		{name: "an admin's action on the account is not where the user has been", docs: []ecs.Event{
			ev("a1", at(-48*time.Hour), "password-reset-by-admin", "success", u, country("GB"), initiator("admin"), admin("helpdesk@x.example")),
			ev("r1", at(time.Minute), "password-reset", "success", u, country("BR"), initiator("user"))}},
		{name: "only the admin's place in the history: the user's own place is still new", docs: []ecs.Event{
			ev("h1", at(-72*time.Hour), "security-info-reviewed", "success", u, country("DE"), initiator("user")),
			ev("a1", at(-48*time.Hour), "admin-security-info-registered", "success", u, country("BR"), initiator("admin"), admin("helpdesk@x.example")),
			ev("r1", at(time.Minute), "password-reset", "success", u, country("BR"), initiator("user"))}, want: []string{u + "@1"}},
		{name: "an earlier flow from the country makes it known", docs: []ecs.Event{
			ev("h1", at(-48*time.Hour), "password-reset", "success", u, country("DE"), flow("f0")),
			ev("s0", at(-time.Hour), "password-reset-progress", "success", u, country("BR"), flow("f9")),
			ev("r1", at(time.Minute), "password-reset", "success", u, country("BR"), flow("f1"))}},
		{name: "second reset from the new country is known", docs: []ecs.Event{
			ev("h1", at(-time.Hour), "password-reset", "success", u, country("DE")),
			ev("r1", at(time.Minute), "password-reset", "success", u, country("BR")),
			ev("r2", at(2*time.Minute), "password-reset", "success", u, country("BR"))}, want: []string{u + "@1"}},
	})
}

func TestNewASN(t *testing.T) {
	u := "a@x.example"
	runCases(t, IDNewASN, []ruleCase{
		{name: "new AS raises", docs: []ecs.Event{
			ev("h1", t0.Add(-time.Hour), "password-reset", "success", u, asn(64500)),
			ev("r1", t0.Add(time.Minute), "password-reset", "success", u, asn(64501))}, want: []string{u + "@1"}},
		{name: "known AS raises nothing", docs: []ecs.Event{
			ev("h1", t0.Add(-time.Hour), "password-reset", "success", u, asn(64500)),
			ev("r1", t0.Add(time.Minute), "password-reset", "success", u, asn(64500))}},
		{name: "no AS raises nothing", docs: []ecs.Event{
			ev("h1", t0.Add(-time.Hour), "password-reset", "success", u),
			ev("r1", t0.Add(time.Minute), "password-reset", "success", u)}},
		{name: "history from config", cfg: func(c *Config) { c.Rules.NewASN.History = time.Hour }, docs: []ecs.Event{
			ev("h1", t0.Add(-2*time.Hour), "password-reset", "success", u, asn(64500)),
			ev("r1", t0.Add(time.Minute), "password-reset", "success", u, asn(64501))}},
	})
}

// baseline spreads perDay resets evenly over each of the days before t0.
func baseline(prefix string, perDay, days int, opts ...func(*ecs.Event)) []ecs.Event {
	var out []ecs.Event
	for d := 1; d <= days; d++ {
		out = append(out, n(prefix+itoa(d), perDay, t0.Add(-time.Duration(d)*day), day/time.Duration(perDay), "password-reset", "success", each("b%d@x.example"), opts...)...)
	}
	return out
}

func TestSurgeDomain(t *testing.T) {
	dom := domain("x.example")
	hour := func(c int, opts ...func(*ecs.Event)) []ecs.Event {
		return n("s", c, t0, time.Minute, "password-reset", "success", each("u%d@x.example"), append([]func(*ecs.Event){dom}, opts...)...)
	}
	runCases(t, IDSurgeDomain, []ruleCase{
		{name: "hourly floor-1 with no baseline raises nothing", docs: hour(9)},
		{name: "hourly floor with no baseline raises", docs: hour(10), want: []string{"x.example@10"}},
		{name: "a busy baseline hides the hour", docs: cat(hour(10), baseline("b", 96, 28, dom))},
		{name: "a baseline of 1 an hour does not", docs: cat(hour(10), baseline("b", 24, 28, dom)), want: []string{"x.example@10"}},
		{name: "a quiet baseline still raises", docs: cat(hour(12), baseline("b", 1, 28, dom)), want: []string{"x.example@12"}},
		{name: "another domain's baseline does not count", docs: cat(hour(10), baseline("b", 24, 28, domain("y.example"))), want: []string{"x.example@10"}},
		{name: "the initiating user's domain without a target domain", docs: n("s", 10, t0, time.Minute, "password-reset", "success", each("u%d"), func(e *ecs.Event) { e.User.Domain = "z.example" }),
			want: []string{"z.example@10"}},
		{name: "domain keys are as stored", docs: cat(
			n("a", 5, t0, time.Minute, "password-reset", "success", each("u%d"), domain("x.example")),
			n("b", 5, t0, time.Minute, "password-reset", "success", each("v%d"), domain("X.example")))},
		{name: "daily bucket raises with the day", from: alignDown(t0, day), to: alignDown(t0, day).Add(day),
			cfg:  func(c *Config) { c.Rules.SurgeDomain.HourlyFloor = 100 },
			docs: n("d", 30, alignDown(t0, day), 30*time.Minute, "password-reset", "success", each("u%d"), dom), want: []string{"x.example@30"}},
		{name: "daily floor-1 raises nothing", from: alignDown(t0, day), to: alignDown(t0, day).Add(day),
			cfg:  func(c *Config) { c.Rules.SurgeDomain.HourlyFloor = 100 },
			docs: n("d", 29, alignDown(t0, day), 30*time.Minute, "password-reset", "success", each("u%d"), dom)},
		{name: "failed resets do not count", docs: n("s", 12, t0, time.Minute, "password-reset", "failure", each("u%d"), dom)},
	})
}

func TestSurgeThresholdsAtBoundaries(t *testing.T) {
	// Baseline of 672 hours with k ones: mean k/672; the ratio and z tests
	// pass for a count of 10 unless the baseline is large.
	cases := []struct {
		name  string
		ratio float64
		z     float64
		want  int
	}{
		{"ratio exactly met raises", 10, 0, 1}, // mean 1 with 24 per day: 10 >= 10 x 1
		{"ratio just missed raises nothing", 10.01, 0, 0},
		{"z exactly met raises", 0, 9, 1}, // (10-1)/max(0,1) = 9
		{"z just missed raises nothing", 0, 9.01, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := NewEngine(only(IDSurgeDomain, func(cfg *Config) {
				cfg.Rules.SurgeDomain.Ratio = max(c.ratio, 1e-9)
				cfg.Rules.SurgeDomain.Z = c.z
				cfg.Rules.SurgeDomain.DailyFloor = 1000
			}))
			if err != nil {
				t.Fatal(err)
			}
			docs := cat(n("s", 10, t0, time.Minute, "password-reset", "success", each("u%d"), domain("x.example")),
				baseline("b", 24, 28, domain("x.example")))
			alerts, err := e.Evaluate(context.Background(), mem(docs), t0, t0.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if len(alerts) != c.want {
				t.Errorf("%d alerts, want %d", len(alerts), c.want)
			}
		})
	}
}

func TestSurgeGroup(t *testing.T) {
	runCases(t, IDSurgeGroup, []ruleCase{
		{name: "each group of the event counts", docs: n("s", 10, t0, time.Minute, "password-reset", "success", each("u%d"), groups("Finance", "Sales")),
			want: []string{"Finance@10", "Sales@10"}},
		{name: "floor-1", docs: n("s", 9, t0, time.Minute, "password-reset", "success", each("u%d"), groups("Finance"))},
		{name: "no groups raises nothing and does not panic", docs: n("s", 20, t0, time.Minute, "password-reset", "success", each("u%d"))},
	})
}

func TestResetThenSecInfo(t *testing.T) {
	u := "a@x.example"
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	runCases(t, IDResetThenSecInfo, []ruleCase{
		{name: "another ip raises", docs: []ecs.Event{
			ev("r", at(0), "password-reset", "success", u, ip("192.0.2.1")),
			ev("s", at(10*time.Minute), "security-info-registered", "success", u, ip("198.51.100.2"))}, want: []string{u + "@2"}},
		{name: "same ip and country raises nothing", docs: []ecs.Event{
			ev("r", at(0), "password-reset", "success", u, ip("192.0.2.1"), country("DE")),
			ev("s", at(10*time.Minute), "security-info-updated", "success", u, ip("192.0.2.1"), country("DE"))}},
		{name: "another country raises without ips", docs: []ecs.Event{
			ev("r", at(0), "password-reset", "success", u, country("DE")),
			ev("s", at(10*time.Minute), "security-info-default-changed", "success", u, country("BR"))}, want: []string{u + "@2"}},
		{name: "missing place raises nothing and does not panic", docs: []ecs.Event{
			ev("r", at(0), "password-reset", "success", u),
			ev("s", at(10*time.Minute), "security-info-deleted", "success", u, ip("198.51.100.2"))}},
		{name: "exactly T later still raises", docs: []ecs.Event{
			ev("r", at(0), "password-reset", "success", u, ip("192.0.2.1")),
			ev("s", at(time.Hour-time.Second), "security-info-saved", "success", u, ip("198.51.100.2"))}, want: []string{u + "@2"}},
		{name: "more than T later raises nothing", from: t0, to: t0.Add(2 * time.Hour), docs: []ecs.Event{
			ev("r", at(0), "password-reset", "success", u, ip("192.0.2.1")),
			ev("s", at(time.Hour+time.Second), "security-info-saved", "success", u, ip("198.51.100.2"))}},
		{name: "reset before from is read as history", docs: []ecs.Event{
			ev("r", at(-30*time.Minute), "password-reset", "success", u, ip("192.0.2.1")),
			ev("s", at(10*time.Minute), "security-info-registered", "success", u, ip("198.51.100.2"))}, want: []string{u + "@2"}},
		{name: "change before the reset raises nothing", docs: []ecs.Event{
			ev("s", at(0), "security-info-registered", "success", u, ip("198.51.100.2")),
			ev("r", at(10*time.Minute), "password-reset", "success", u, ip("192.0.2.1"))}},
		{name: "another user's reset does not count", docs: []ecs.Event{
			ev("r", at(0), "password-reset", "success", "b@x.example", ip("192.0.2.1")),
			ev("s", at(10*time.Minute), "security-info-registered", "success", u, ip("198.51.100.2"))}},
	})
}

func TestAdminSecInfoThenReset(t *testing.T) {
	u := "a@x.example"
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	runCases(t, IDAdminSecInfoThenReset, []ruleCase{
		{name: "admin registration then reset raises", docs: []ecs.Event{
			ev("a", at(0), "admin-security-info-registered", "success", u, admin("admin@x.example")),
			ev("r", at(59*time.Minute), "password-reset", "success", u)}, want: []string{u + "@2"}},
		{name: "admin update counts", docs: []ecs.Event{
			ev("a", at(0), "admin-security-info-updated", "success", u, admin("admin@x.example")),
			ev("r", at(time.Minute), "password-reset", "success", u)}, want: []string{u + "@2"}},
		{name: "admin deletion does not count", docs: []ecs.Event{
			ev("a", at(0), "admin-security-info-deleted", "success", u),
			ev("r", at(time.Minute), "password-reset", "success", u)}},
		{name: "failed reset raises nothing", docs: []ecs.Event{
			ev("a", at(0), "admin-security-info-registered", "success", u),
			ev("r", at(time.Minute), "password-reset", "failure", u)}},
		{name: "too late raises nothing", from: t0, to: t0.Add(3 * time.Hour), docs: []ecs.Event{
			ev("a", at(0), "admin-security-info-registered", "success", u),
			ev("r", at(2*time.Hour), "password-reset", "success", u)}},
	})
}

func TestAdminMassReset(t *testing.T) {
	a := admin("helpdesk@x.example")
	runCases(t, IDAdminMassReset, []ruleCase{
		{name: "threshold-1 distinct users", docs: cat(
			n("a", 9, t0, time.Minute, "password-reset-by-admin", "success", each("u%d"), a),
			n("b", 9, t0, time.Minute, "password-reset-by-admin", "success", each("u%d"), a))},
		{name: "threshold distinct users", docs: n("a", 10, t0, time.Minute, "password-reset-by-admin", "success", each("u%d"), a),
			want: []string{"helpdesk@x.example@10"}},
		{name: "failed admin resets do not count", docs: n("a", 10, t0, time.Minute, "password-reset-by-admin", "failure", each("u%d"), a)},
		{name: "admin id when no name", docs: n("a", 10, t0, time.Minute, "password-reset-by-admin", "success", each("u%d"), func(e *ecs.Event) { e.User.ID = "admin-id" }),
			want: []string{"admin-id@10"}},
	})
}

func TestPrivilegedReset(t *testing.T) {
	u := "a@x.example"
	runCases(t, IDPrivilegedReset, []ruleCase{
		{name: "listed role raises, case-insensitively", docs: []ecs.Event{ev("r", t0, "password-reset", "success", u, roles("Reports Reader", "global administrator"))},
			want: []string{u + "@1"}},
		{name: "admin reset raises", docs: []ecs.Event{ev("r", t0, "password-reset-by-admin", "success", u, roles("Helpdesk Administrator"), admin("h@x.example"))},
			want: []string{u + "@1"}},
		{name: "unlisted role raises nothing", docs: []ecs.Event{ev("r", t0, "password-reset", "success", u, roles("Reports Reader"))}},
		{name: "no roles raises nothing", docs: []ecs.Event{ev("r", t0, "password-reset", "success", u)}},
		{name: "failed reset raises nothing", docs: []ecs.Event{ev("r", t0, "password-reset", "failure", u, roles("Global Administrator"))}},
		{name: "roles from config", cfg: func(c *Config) { c.Rules.PrivilegedReset.Roles = []string{"Reports Reader"} },
			docs: []ecs.Event{ev("r", t0, "password-reset", "success", u, roles("Reports Reader"))}, want: []string{u + "@1"}},
	})
}
