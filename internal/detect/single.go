package detect

import (
	"math"
	"time"
)

// newPlace raises a successful reset from a place (country, AS) none of
// the user's earlier events in the history came from; a user with no
// earlier event carrying such a place in the history raises nothing.
// Events of the reset's own flow are not history: a reset's progress steps
// come from wherever the reset comes from, so counting them would make
// every place known by the time the reset is logged. Nor are the events an
// admin or an application initiated on the account: their place is the
// help desk's, not the user's.
type newPlace struct {
	ruleID string
	h      HistoryRule
	place  func(f *fact) string
	field  string
}

func newPlaceRule(id string, h HistoryRule, place func(f *fact) string, field string) rule {
	return &newPlace{ruleID: id, h: h, place: place, field: field}
}

func (r *newPlace) id() string { return r.ruleID }

func (r *newPlace) span(from, to time.Time) (time.Time, time.Time) {
	return from.Add(-r.h.History), to
}

func (r *newPlace) eval(facts []fact, from, to time.Time) []Alert {
	earlier := map[string][]int{} // user -> indices of their events with a place, in order
	var out []Alert
	for i := range facts {
		f := &facts[i]
		p := r.place(f)
		if f.user == "" || p == "" {
			continue
		}
		if f.reset() && in(f.t, from, to) && r.novel(facts, earlier[f.user], f, p) {
			out = append(out, Alert{
				ID: AlertID(r.ruleID, f.user, f.id), RuleID: r.ruleID, Key: f.user, KeyField: f.userField,
				Start: f.t, End: f.t, Time: f.t, Count: 1,
				Evidence: []string{f.id}, Users: []string{f.user}, IPs: []string{f.ip}, Tenants: []string{f.tenant},
			})
		}
		if !f.byOther {
			earlier[f.user] = append(earlier[f.user], i)
		}
	}
	return out
}

// novel reports whether the user's earlier events of other flows within
// the history (an event exactly at its edge included) have a place and
// none of them is p.
func (r *newPlace) novel(facts []fact, earlier []int, f *fact, p string) bool {
	edge := f.t.Add(-r.h.History)
	known := false
	for j := len(earlier) - 1; j >= 0; j-- {
		g := &facts[earlier[j]]
		if g.t.Before(edge) {
			break
		}
		if f.flow != "" && g.flow == f.flow {
			continue
		}
		if r.place(g) == p {
			return false
		}
		known = true
	}
	return known
}

// privilegedReset raises every successful reset, self-service or by an
// admin, of an account holding a listed role.
type privilegedReset struct{}

func (privilegedReset) id() string { return IDPrivilegedReset }

func (privilegedReset) span(from, to time.Time) (time.Time, time.Time) { return from, to }

func (privilegedReset) eval(facts []fact, from, to time.Time) []Alert {
	var out []Alert
	for i := range facts {
		f := &facts[i]
		if !f.privileged || f.user == "" || !(f.reset() || f.adminReset()) || !in(f.t, from, to) {
			continue
		}
		a := Alert{
			ID: AlertID(IDPrivilegedReset, f.user, f.id), RuleID: IDPrivilegedReset, Key: f.user, KeyField: f.userField,
			Start: f.t, End: f.t, Time: f.t, Count: 1,
			Evidence: []string{f.id}, Users: []string{f.user}, IPs: []string{f.ip}, Tenants: []string{f.tenant},
		}
		if f.action == "password-reset-by-admin" {
			a.Users = append(a.Users, f.admin)
		}
		out = append(out, a)
	}
	return out
}

// surgeRule compares each 1h and 1d bucket's successful resets per key
// with the same-size buckets of the baseline before it.
type surgeRule struct {
	ruleID string
	s      SurgeRule
	field  string
	keys   func(f *fact) []string
}

func surge(id string, s SurgeRule, field string, keys func(f *fact) []string) rule {
	return &surgeRule{ruleID: id, s: s, field: field, keys: keys}
}

// bucket is one bucket size with its floor and the anchor suffix. The
// surge rules' anchor is the bucket start followed by its ISO 8601
// length (2026-11-02T00:00:00Z/PT1H, /P1D): the start alone would give
// the hour and the day that both start at midnight the same id.
type bucket struct {
	size   time.Duration
	floor  int
	suffix string
}

func (r *surgeRule) buckets() []bucket {
	return []bucket{{time.Hour, r.s.HourlyFloor, "/PT1H"}, {day, r.s.DailyFloor, "/P1D"}}
}

func (r *surgeRule) id() string { return r.ruleID }

func (r *surgeRule) span(from, to time.Time) (time.Time, time.Time) {
	lo, hi := from, to
	for _, b := range r.buckets() {
		if a := alignUp(from, b.size).Add(-r.s.Baseline); a.Before(lo) {
			lo = a
		}
		if z := alignUp(to, b.size); z.After(hi) {
			hi = z
		}
	}
	return lo, hi
}

func (r *surgeRule) eval(facts []fact, from, to time.Time) []Alert {
	var out []Alert
	for _, b := range r.buckets() {
		type bk struct {
			key string
			n   int64
		}
		counts := map[bk]int{}
		cand := map[bk]*Alert{}
		var order []bk
		for i := range facts {
			f := &facts[i]
			if !f.reset() {
				continue
			}
			start := alignDown(f.t, b.size)
			n := start.UnixNano() / int64(b.size)
			for _, key := range r.keys(f) {
				k := bk{key, n}
				counts[k]++
				if !in(start, from, to) {
					continue
				}
				a := cand[k]
				if a == nil {
					a = &Alert{
						ID: AlertID(r.ruleID, key, WindowAnchor(start)+b.suffix), RuleID: r.ruleID, Key: key, KeyField: r.field,
						Start: start, End: start.Add(b.size), Time: start.Add(b.size),
					}
					cand[k] = a
					order = append(order, k)
				}
				a.Evidence = append(a.Evidence, f.id)
				a.Users = append(a.Users, f.user)
				a.IPs = append(a.IPs, f.ip)
				a.Tenants = append(a.Tenants, f.tenant)
			}
		}
		nb := int64(r.s.Baseline / b.size)
		for _, k := range order {
			c := counts[k]
			if c < b.floor {
				continue
			}
			var sum, sumsq float64
			for j := int64(1); j <= nb; j++ {
				v := float64(counts[bk{k.key, k.n - j}])
				sum += v
				sumsq += v * v
			}
			mean := sum / float64(nb)
			std := math.Sqrt(max(sumsq/float64(nb)-mean*mean, 0))
			fc := float64(c)
			if fc >= r.s.Ratio*mean && (fc-mean)/max(std, 1) >= r.s.Z {
				a := *cand[k]
				a.Count = c
				out = append(out, a)
			}
		}
	}
	return out
}
