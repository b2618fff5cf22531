package detect

import "time"

// sequence raises, for each event of the second kind, an alert when the
// same user had events of the first kind shortly before it. The
// triggering event is the second one: the alert is anchored at its id,
// and the first events before it are its evidence.
type sequence struct {
	ruleID string
	within time.Duration
	first  func(f *fact) bool
	second func(f *fact) bool
	match  func(first, second *fact) bool
}

func resetThenSecInfo(s SequenceRule) rule {
	return &sequence{ruleID: IDResetThenSecInfo, within: s.Within,
		first:  (*fact).reset,
		second: (*fact).secInfo,
		match: func(a, b *fact) bool {
			// Another place: the addresses differ, or the countries when
			// both events have one; a missing value differs from nothing.
			return a.ip != "" && b.ip != "" && a.ip != b.ip ||
				a.country != "" && b.country != "" && a.country != b.country
		}}
}

func adminSecInfoThenReset(s SequenceRule) rule {
	return &sequence{ruleID: IDAdminSecInfoThenReset, within: s.Within,
		first:  (*fact).adminSecInfo,
		second: (*fact).reset,
		match:  func(a, b *fact) bool { return true }}
}

func (r *sequence) id() string { return r.ruleID }

func (r *sequence) span(from, to time.Time) (time.Time, time.Time) {
	return from.Add(-r.within), to
}

func (r *sequence) eval(facts []fact, from, to time.Time) []Alert {
	firsts := map[string][]int{} // user -> indices of first events, in order
	var out []Alert
	for i := range facts {
		f := &facts[i]
		if f.user == "" {
			continue
		}
		if r.second(f) && in(f.t, from, to) {
			prior := firsts[f.user]
			var a *Alert
			for j := len(prior) - 1; j >= 0; j-- {
				p := &facts[prior[j]]
				if f.t.Sub(p.t) > r.within {
					break
				}
				if !r.match(p, f) {
					continue
				}
				if a == nil {
					a = &Alert{ID: AlertID(r.ruleID, f.user, f.id), RuleID: r.ruleID, Key: f.user, KeyField: f.userField,
						End: f.t, Time: f.t, Evidence: []string{f.id}, Users: []string{f.user}, IPs: []string{f.ip}, Tenants: []string{f.tenant}}
				}
				a.Start = p.t
				a.Evidence = append(a.Evidence, p.id)
				a.IPs = append(a.IPs, p.ip)
				a.Users = append(a.Users, p.admin)
			}
			if a != nil {
				a.Count = len(a.Evidence)
				out = append(out, *a)
			}
		}
		if r.first(f) {
			firsts[f.user] = append(firsts[f.user], i)
		}
	}
	return out
}
