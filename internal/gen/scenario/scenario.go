package scenario

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
)

// Scenario names besides the attacks.
const (
	Benign = "benign" // normal traffic only
	Month  = "month"  // 30 days of normal traffic with every attack injected twice
)

// Attacks are the attack scenarios, each named after what it injects.
var Attacks = []string{"failed-burst", "spray", "new-country", "new-asn", "surge-domain", "surge-group",
	"reset-then-secinfo", "admin-secinfo-then-reset", "admin-mass-reset", "privileged-reset"}

// Names lists every scenario name.
func Names() []string { return append([]string{Benign, Month}, Attacks...) }

// Options shape a scenario.
type Options struct {
	Scenario string
	Days     int // length of the stream; 0 = 28 (30 for month)
	Users    int // accounts of the tenant; 0 = 3000
	Seed     uint64
	Start    time.Time // first day, truncated to 00:00Z; zero = 2026-10-01
}

// Label is one alert an injected attack must raise.
type Label struct {
	Scenario string    `json:"scenario"`
	Instance int       `json:"instance"` // which injection of the stream
	Rule     string    `json:"rule"`     // rule id expected
	Key      string    `json:"key"`      // the alert's key: user, IP, domain, group or admin
	Start    time.Time `json:"start"`    // window start, or the first event of a sequence
	End      time.Time `json:"end"`      // window end, or the triggering event's time
	Windowed bool      `json:"windowed"` // Start and End are a tumbling window
	EventIDs []string  `json:"event_ids"`
}

// Stream is a generated scenario: its documents in time order, the raw
// records they came from (same order) and the labels.
type Stream struct {
	Docs   []ecs.Event
	Raw    [][]byte
	Labels []Label
	From   time.Time // first day 00:00Z
	To     time.Time // end of the last day
}

// Generate builds a scenario.
func Generate(o Options) (*Stream, error) {
	isAttack := slices.Contains(Attacks, o.Scenario)
	if !isAttack && o.Scenario != Benign && o.Scenario != Month {
		return nil, fmt.Errorf("scenario: unknown scenario %q (known: %s)", o.Scenario, strings.Join(Names(), ", "))
	}
	if o.Days == 0 {
		o.Days = 28
		if o.Scenario == Month {
			o.Days = 30
		}
	}
	if o.Days < 10 {
		return nil, fmt.Errorf("scenario: at least 10 days are needed for a history, not %d", o.Days)
	}
	if o.Users == 0 {
		o.Users = 3000
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x5bd1e9955bd1e995))
	t, err := NewTenant(rng, o.Users)
	if err != nil {
		return nil, err
	}
	g := &builder{rng: rng, t: t, from: o.Start.UTC().Truncate(24 * time.Hour), days: o.Days,
		resetsHour: map[string]int{}, resetsDay: map[string]int{}, busy: map[*person][]time.Time{}, attacked: map[*person]bool{}}
	g.benign()
	switch {
	case isAttack:
		// One injection, in the last third of the stream so that the
		// baselines and histories are there.
		day := o.Days - 1 - rng.IntN(max(1, o.Days/3))
		if err := g.inject(o.Scenario, day, 1); err != nil {
			return nil, err
		}
	case o.Scenario == Month:
		// Every attack twice, each on a day of its own after the first week.
		days := rng.Perm(o.Days - 8)
		n := 0
		for round := 1; round <= 2; round++ {
			for _, a := range Attacks {
				if err := g.inject(a, 7+days[n%len(days)], round); err != nil {
					return nil, err
				}
				n++
			}
		}
	}
	cat, err := sspr.NewCatalog(nil)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(g.recs, func(a, b *record) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	s := &Stream{From: g.from, To: g.from.AddDate(0, 0, o.Days)}
	for _, r := range g.recs {
		raw := r.raw(t.ID)
		doc, err := document(cat, raw, r)
		if err != nil {
			return nil, err
		}
		s.Docs = append(s.Docs, doc)
		s.Raw = append(s.Raw, raw)
	}
	for i := range g.labels {
		slices.Sort(g.labels[i].EventIDs)
	}
	s.Labels = g.labels
	return s, nil
}

// WriteECS writes the documents as the file output does: one per line.
func (s *Stream) WriteECS(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var b []byte
	for i := range s.Docs {
		b = append(s.Docs[i].AppendJSON(b[:0]), '\n')
		if _, err := bw.Write(b); err != nil {
			return fmt.Errorf("scenario: write: %w", err)
		}
	}
	return bw.Flush()
}

// WriteEntra writes the raw diagnostic-settings records, one per line, as
// the exporter's file input reads them.
func (s *Stream) WriteEntra(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	for _, r := range s.Raw {
		bw.Write(r)
		if err := bw.WriteByte('\n'); err != nil {
			return fmt.Errorf("scenario: write: %w", err)
		}
	}
	return bw.Flush()
}

// WriteLabels writes the labels as an indented JSON array.
func (s *Stream) WriteLabels(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	labels := s.Labels
	if labels == nil {
		labels = []Label{}
	}
	return enc.Encode(labels)
}

// builder accumulates records.
type builder struct {
	rng    *rand.Rand
	t      *Tenant
	from   time.Time
	days   int
	recs   []*record
	labels []Label
	seq    int
	// successful self-service resets per domain or group and bucket start,
	// kept so that injections stay clear of the other surge keys.
	resetsHour, resetsDay map[string]int
	// busy holds, per account, the times of its benign resets, so that
	// injections on an account keep clear of its own traffic.
	busy map[*person][]time.Time
	// attacked holds the accounts an injection used, so that no two
	// injections share one.
	attacked map[*person]bool
}

func (g *builder) corr() string { return uuid(g.rng) }

// add appends a record and returns its event id.
func (g *builder) add(r record) string {
	g.seq++
	r.id = "SSPR_" + r.corr + "_" + strconv.Itoa(10000000+g.seq)
	if r.service == "" {
		r.service = svcSSPR
	}
	g.recs = append(g.recs, &r)
	if r.activity == actReset && r.success {
		for _, k := range surgeKeys(r.target) {
			g.resetsHour[bucketKey(k, r.at.Truncate(time.Hour))]++
			g.resetsDay[bucketKey(k, r.at.Truncate(24*time.Hour))]++
		}
	}
	return r.id
}

// surgeKeys are the domain and group keys a reset of p counts for.
func surgeKeys(p *person) []string {
	keys := []string{"d:" + p.domain}
	for _, gr := range p.groups {
		keys = append(keys, "g:"+strings.ToLower(gr.name))
	}
	return keys
}

func bucketKey(k string, t time.Time) string { return k + "@" + t.Format(time.RFC3339) }

var methods = []struct{ started, completed, abandoned string }{
	{"User started the mobile SMS verification option", "User completed the mobile SMS verification option", "User abandoned after starting the mobile SMS verification option"},
	{"User started the email verification option", "User completed the email verification option", "User abandoned after starting the email verification option"},
	{"User started the mobile app notification verification option", "User completed the mobile app notification verification option", "User abandoned after starting the mobile voice call verification option"},
	{"User started the security questions verification option", "User completed the security questions verification option", "User abandoned after starting the security questions option"},
}

// flow writes one self-service reset flow of p from pl starting at at:
// its progress steps, then the reset when it completes. It returns the
// id of the reset (or of the step given up) and its time.
func (g *builder) flow(p *person, pl place, at time.Time, complete bool) (ids []string, end time.Time) {
	c := g.corr()
	step := func(reason string, ok bool) string {
		at = at.Add(time.Duration(5+g.rng.IntN(40))*time.Second + time.Duration(g.rng.IntN(1e7))*100)
		return g.add(record{at: at, activity: actProgress, success: ok, reason: reason, corr: c, target: p, from: pl})
	}
	m := methods[g.rng.IntN(len(methods))]
	step("User submitted their user ID", true)
	step("User was presented with verification options", true)
	step(m.started, true)
	if !complete {
		ids = append(ids, step(m.abandoned, false))
		return ids, at
	}
	step(m.completed, true)
	step("User completed all verification steps required", true)
	step("User submitted a new password", true)
	at = at.Add(time.Duration(1+g.rng.IntN(3)) * time.Second)
	ids = append(ids, g.add(record{at: at, activity: actReset, success: true, reason: "User successfully reset password", corr: c, target: p, from: pl}))
	end = at
	step("User successfully reset password", true)
	return ids, end
}

// daytime is a random time of day d between 06:00 and 20:00 UTC.
func (g *builder) daytime(d int) time.Time {
	return g.from.AddDate(0, 0, d).Add(6*time.Hour + time.Duration(g.rng.Int64N(int64(14*time.Hour))))
}

// plainUser is a random account that may reset in benign traffic.
func (g *builder) plainUser() *person { return g.t.plain[g.rng.IntN(len(g.t.plain))] }

// benign writes the normal traffic of every day.
func (g *builder) benign() {
	// Travellers are seen at home and then in their second country in the
	// first days, so that a later reset from either is not new.
	for _, p := range g.t.users {
		if p.travel != nil {
			at := g.daytime(g.rng.IntN(3))
			g.add(record{at: at.Add(-time.Hour), activity: actReviewed, service: svcAuth, success: true, reason: "User reviewed security info", corr: g.corr(), target: p, from: p.home})
			g.add(record{at: at, activity: actReviewed, service: svcAuth, success: true, reason: "User reviewed security info", corr: g.corr(), target: p, from: *p.travel})
		}
	}
	for d := 0; d < g.days; d++ {
		perHour := map[time.Time]int{}
		resetToday := map[*person]bool{}
		// Successful self-service resets, at most 6 an hour tenant-wide,
		// so that no domain or group reaches a surge floor.
		for range 10 + g.rng.IntN(9) {
			p := g.plainUser()
			if resetToday[p] {
				continue
			}
			at := g.daytime(d)
			if perHour[at.Truncate(time.Hour)] >= 6 {
				continue
			}
			perHour[at.Truncate(time.Hour)]++
			resetToday[p] = true
			pl := p.home
			if p.travel != nil && g.rng.IntN(3) == 0 {
				pl = *p.travel
			}
			if g.rng.IntN(8) == 0 {
				// A first attempt given up, then the reset.
				_, at = g.flow(p, pl, at, false)
				at = at.Add(time.Duration(2+g.rng.IntN(10)) * time.Minute)
			}
			_, end := g.flow(p, pl, at, true)
			g.busy[p] = append(g.busy[p], end)
			if g.rng.IntN(4) == 0 {
				// A new method registered right after, from the same place.
				g.add(record{at: end.Add(time.Duration(1+g.rng.IntN(8)) * time.Minute), activity: actRegistered, service: svcAuth,
					success: true, reason: "User registered Authenticator App with Notification and Code", corr: g.corr(), target: p, from: pl})
			}
		}
		// Flows given up.
		for range 6 + g.rng.IntN(7) {
			p := g.plainUser()
			g.flow(p, p.home, g.daytime(d), false)
		}
		// Now and then a user is blocked after a failed flow.
		if g.rng.IntN(3) == 0 {
			p := g.plainUser()
			_, end := g.flow(p, p.home, g.daytime(d), false)
			g.add(record{at: end.Add(20 * time.Second), activity: actBlocked, success: true,
				reason: "User has exceeded the number of reset attempts allowed in 24 hours", corr: g.corr(), target: p, from: p.home})
		}
		// Unlocks.
		for range g.rng.IntN(4) {
			p := g.plainUser()
			g.add(record{at: g.daytime(d), activity: actUnlock, success: true, reason: "User successfully unlocked account", corr: g.corr(), target: p, from: p.home})
		}
		// Security-info registrations and changes, privileged users included.
		for range 15 + g.rng.IntN(16) {
			p := g.t.users[g.rng.IntN(len(g.t.users))]
			act := []string{actRegistered, actUpdated, actDefault, actReviewed}[g.rng.IntN(4)]
			if resetToday[p] && act != actReviewed {
				continue // kept clear of the day's reset, whose place may differ
			}
			g.add(record{at: g.daytime(d), activity: act, service: svcAuth, success: true, reason: "User changed security info", corr: g.corr(), target: p, from: p.home})
		}
		// The help desk: resets at a few an hour per admin, and security info
		// registered for users who do not reset that day.
		adminHour := map[string]int{}
		for range 5 + g.rng.IntN(8) {
			a := g.t.helpdesk[g.rng.IntN(len(g.t.helpdesk))]
			at := g.daytime(d)
			k := a.upn + at.Truncate(time.Hour).String()
			if adminHour[k] >= 3 {
				continue
			}
			adminHour[k]++
			g.add(record{at: at, activity: actAdminReset, success: true, reason: "Successfully completed reset.", corr: g.corr(), actor: a, target: g.plainUser(), from: a.home})
		}
		for range g.rng.IntN(3) {
			a := g.t.helpdesk[g.rng.IntN(len(g.t.helpdesk))]
			p := g.plainUser()
			if resetToday[p] {
				continue
			}
			g.add(record{at: g.daytime(d), activity: actAdminSecReg, service: svcAuth, success: true, reason: "Admin registered phone method for user", corr: g.corr(), actor: a, target: p, from: a.home})
		}
	}
}

// quiet reports whether p has no benign reset within a day of at.
func (g *builder) quiet(p *person, at time.Time) bool {
	for _, b := range g.busy[p] {
		if b.Sub(at).Abs() < 24*time.Hour {
			return false
		}
	}
	return true
}

// victim is a plain account without a travel country and quiet around at.
func (g *builder) victim(at time.Time, taken map[*person]bool) *person {
	for {
		p := g.plainUser()
		if p.travel == nil && !taken[p] && g.quiet(p, at) {
			taken[p] = true
			return p
		}
	}
}

func (g *builder) label(scn string, inst int, rule, key string, start, end time.Time, windowed bool, ids ...string) {
	g.labels = append(g.labels, Label{Scenario: scn, Instance: inst, Rule: rule, Key: key, Start: start, End: end, Windowed: windowed, EventIDs: ids})
}

// novel picks a victim and a place new for it: a network of another
// country (newCountry) or another network of its home country, which none
// of the victim's events so far came from.
func (g *builder) novel(at time.Time, newCountry bool) (*person, place) {
	for {
		p := g.victim(at, g.attacked)
		// Home first: the injection writes an earlier event from there.
		countries, asns := map[string]bool{p.home.net.country: true}, map[int64]bool{p.home.net.asn: true}
		for _, r := range g.recs {
			if r.target == p {
				countries[r.from.net.country], asns[r.from.net.asn] = true, true
			}
		}
		var cands []*network
		if newCountry {
			for i := range attackNetworks {
				if nw := &attackNetworks[i]; !countries[nw.country] && !asns[nw.asn] {
					cands = append(cands, nw)
				}
			}
		} else {
			for i := range homeNetworks {
				if nw := &homeNetworks[i]; nw.country == p.home.net.country && !asns[nw.asn] {
					cands = append(cands, nw)
				}
			}
		}
		if len(cands) > 0 {
			return p, g.t.address(cands[g.rng.IntN(len(cands))])
		}
	}
}

// attacker is a fresh address of an attack network.
func (g *builder) attacker() place {
	return g.t.address(&attackNetworks[g.rng.IntN(len(attackNetworks))])
}

// inject writes one instance of attack a on day d.
func (g *builder) inject(a string, d, inst int) error {
	day := g.from.AddDate(0, 0, d)
	hour := day.Add(time.Duration(7+g.rng.IntN(10)) * time.Hour)
	at := hour.Add(time.Duration(g.rng.IntN(10)) * time.Minute)
	taken := g.attacked
	switch a {
	case "failed-burst":
		// Someone guessing verification codes: eight failed steps within
		// twenty minutes, then the block.
		p, pl := g.victim(at, taken), g.attacker()
		var ids []string
		for i := range 8 {
			c := g.corr()
			t := at.Add(time.Duration(i*150+g.rng.IntN(60)) * time.Second)
			ids = append(ids, g.add(record{at: t, activity: actProgress, success: false, reason: methods[0].abandoned, corr: c, target: p, from: pl}))
		}
		ids = append(ids, g.add(record{at: at.Add(25 * time.Minute), activity: actBlocked, success: true,
			reason: "User entered too many invalid SMS verification codes and is blocked for 24 hours", corr: g.corr(), target: p, from: pl}))
		g.label(a, inst, "sspr-failed-attempts", p.upn, hour, hour.Add(time.Hour), true, ids...)
	case "spray":
		// One address trying a dozen accounts once each.
		pl := g.attacker()
		var ids []string
		for i := range 12 {
			p := g.victim(at, taken)
			t := at.Add(time.Duration(i*200+g.rng.IntN(90)) * time.Second)
			ids = append(ids, g.add(record{at: t, activity: actProgress, success: false, reason: "User abandoned after entering their user ID", corr: g.corr(), target: p, from: pl}))
		}
		g.label(a, inst, "sspr-spray-ip", pl.ip, hour, hour.Add(time.Hour), true, ids...)
	case "new-country", "new-asn":
		// A whole reset flow from where the user has never been: a new
		// country (and so a new network), or a new network of the home
		// country. Its progress steps come from the same place, as an
		// attacker's would.
		p, pl := g.novel(at, a == "new-country")
		// The victim's own earlier traffic, so that the history has its home.
		g.add(record{at: at.Add(-72 * time.Hour), activity: actReviewed, service: svcAuth, success: true, reason: "User reviewed security info", corr: g.corr(), target: p, from: p.home})
		ids, end := g.flow(p, pl, at, true)
		if a == "new-country" {
			g.label(a, inst, "sspr-new-country", p.upn, end, end, false, ids[0])
		}
		g.label(a, inst, "sspr-new-asn", p.upn, end, end, false, ids[0])
	case "surge-domain":
		return g.surge(a, inst, day, true)
	case "surge-group":
		return g.surge(a, inst, day, false)
	case "reset-then-secinfo":
		// A reset at home, then a new method registered from elsewhere.
		p := g.victim(at, taken)
		ids, end := g.flow(p, p.home, at, true)
		t := end.Add(time.Duration(10+g.rng.IntN(30)) * time.Minute)
		sid := g.add(record{at: t, activity: actRegistered, service: svcAuth, success: true, reason: "User registered Authenticator App with Notification and Code", corr: g.corr(), target: p, from: g.attacker()})
		g.label(a, inst, "sspr-reset-then-secinfo", p.upn, end, t, false, ids[0], sid)
	case "admin-secinfo-then-reset":
		// The help desk talked into adding a phone, then the reset with it.
		p, admin := g.victim(at, taken), g.t.helpdesk[g.rng.IntN(len(g.t.helpdesk))]
		aid := g.add(record{at: at, activity: actAdminSecReg, service: svcAuth, success: true, reason: "Admin registered phone method for user", corr: g.corr(), actor: admin, target: p, from: admin.home})
		ids, end := g.flow(p, p.home, at.Add(time.Duration(5+g.rng.IntN(20))*time.Minute), true)
		g.label(a, inst, "sspr-admin-secinfo-then-reset", p.upn, at, end, false, aid, ids[0])
	case "admin-mass-reset":
		// A help desk account resetting fifteen users in half an hour.
		admin := g.t.helpdesk[g.rng.IntN(len(g.t.helpdesk))]
		var ids []string
		for i := range 15 {
			t := at.Add(time.Duration(i*100+g.rng.IntN(60)) * time.Second)
			ids = append(ids, g.add(record{at: t, activity: actAdminReset, success: true, reason: "Successfully completed reset.", corr: g.corr(), actor: admin, target: g.victim(at, taken), from: admin.home}))
		}
		g.label(a, inst, "sspr-admin-mass-reset", admin.upn, hour, hour.Add(time.Hour), true, ids...)
	case "privileged-reset":
		p := g.t.priv[g.rng.IntN(len(g.t.priv))]
		ids, end := g.flow(p, p.home, at, true)
		g.label(a, inst, "sspr-privileged-reset", p.upn, end, end, false, ids[0])
	default:
		return fmt.Errorf("scenario: unknown attack %q", a)
	}
	return nil
}

// Surge sizes: per hour above the 10 floor, per day above the 30 floor.
const (
	surgeHours   = 3
	surgePerHour = 12
	otherPerHour = 8  // stays under the hourly floor
	otherPerDay  = 26 // stays under the daily floor
)

// surge writes a wave of successful resets in one domain (or one group)
// over three hours, choosing users whose other domain and groups stay
// under the floors, so that only the targeted key surges.
func (g *builder) surge(a string, inst int, day time.Time, byDomain bool) error {
	var key, label string
	if byDomain {
		label = g.t.domains[2] // the smallest domain
		key = "d:" + label
	} else {
		// A department, the largest one when the tenant is small.
		gr := g.t.groups[g.rng.IntN(len(departments))]
		if len(g.t.users) < 2000 {
			count := map[string]int{}
			for _, p := range g.t.plain {
				count[p.groups[0].name]++
			}
			for _, d := range g.t.groups[:len(departments)] {
				if count[d.name] > count[gr.name] {
					gr = d
				}
			}
		}
		label, key = gr.name, "g:"+strings.ToLower(gr.name)
	}
	var members []*person
	for _, p := range g.t.plain {
		if p.travel == nil && slices.Contains(surgeKeys(p), key) {
			members = append(members, p)
		}
	}
	taken := g.attacked
	var dayIDs []string
	first := day.Add(time.Duration(8+g.rng.IntN(6)) * time.Hour)
	for h := range surgeHours {
		hour := first.Add(time.Duration(h) * time.Hour)
		var ids []string
		for tries := 0; len(ids) < surgePerHour; tries++ {
			if tries > 50*len(members) {
				return fmt.Errorf("scenario: %s: too few users to surge %s: give the tenant more users", a, label)
			}
			p := members[g.rng.IntN(len(members))]
			if taken[p] || !g.quiet(p, hour) || !g.roomFor(p, key, hour) {
				continue
			}
			taken[p] = true
			at := hour.Add(time.Duration(g.rng.Int64N(int64(50 * time.Minute))))
			rids, _ := g.flow(p, p.home, at, true)
			ids = append(ids, rids[0])
		}
		rule := "sspr-surge-group"
		if byDomain {
			rule = "sspr-surge-domain"
		}
		g.label(a, inst, rule, label, hour, hour.Add(time.Hour), true, ids...)
		dayIDs = append(dayIDs, ids...)
	}
	rule := "sspr-surge-group"
	if byDomain {
		rule = "sspr-surge-domain"
	}
	g.label(a, inst, rule, label, day, day.AddDate(0, 0, 1), true, dayIDs...)
	return nil
}

// roomFor reports whether a reset of p in hour keeps every surge key of p
// other than the target under the floors.
func (g *builder) roomFor(p *person, target string, hour time.Time) bool {
	for _, k := range surgeKeys(p) {
		if k == target {
			continue
		}
		if g.resetsHour[bucketKey(k, hour)] >= otherPerHour || g.resetsDay[bucketKey(k, hour.Truncate(24*time.Hour))] >= otherPerDay {
			return false
		}
	}
	return true
}
