package detect

import "time"

// windowed counts events, or distinct members, per key in tumbling windows.
type windowed struct {
	ruleID string
	w      WindowRule
	// sel says whether f counts, under which key, as which member
	// (members are counted distinct; "" counts events).
	sel      func(f *fact) (key, keyField, member string, ok bool)
	distinct bool
	admin    bool // the key is the initiating admin: add it to related.user
}

func failedAttempts(w WindowRule) rule {
	return &windowed{ruleID: IDFailedAttempts, w: w, sel: func(f *fact) (string, string, string, bool) {
		return f.user, f.userField, "", f.failure() && f.user != ""
	}}
}

func sprayIP(w WindowRule) rule {
	return &windowed{ruleID: IDSprayIP, w: w, distinct: true, sel: func(f *fact) (string, string, string, bool) {
		return f.ip, "source.ip", f.user, f.failure() && f.ip != "" && f.user != ""
	}}
}

func adminMassReset(w WindowRule) rule {
	return &windowed{ruleID: IDAdminMassReset, w: w, distinct: true, admin: true, sel: func(f *fact) (string, string, string, bool) {
		return f.admin, f.adminField, f.user, f.action == "password-reset-by-admin" && f.outcome == "success" && f.admin != "" && f.user != ""
	}}
}

func (r *windowed) id() string { return r.ruleID }

func (r *windowed) span(from, to time.Time) (time.Time, time.Time) {
	// Windows starting in [from, to) are read whole, even past to, so
	// that splitting a range into parts raises what the whole range does.
	return alignUp(from, r.w.Window), alignUp(to, r.w.Window)
}

type windowKey struct {
	key   string
	start int64
}

type windowAcc struct {
	alert   Alert
	members map[string]bool
}

func (r *windowed) eval(facts []fact, from, to time.Time) []Alert {
	accs := map[windowKey]*windowAcc{}
	var order []windowKey
	for i := range facts {
		f := &facts[i]
		key, field, member, ok := r.sel(f)
		if !ok {
			continue
		}
		start := alignDown(f.t, r.w.Window)
		if !in(start, from, to) {
			continue
		}
		k := windowKey{key, start.UnixNano()}
		acc := accs[k]
		if acc == nil {
			acc = &windowAcc{members: map[string]bool{}, alert: Alert{
				RuleID: r.ruleID, Key: key, KeyField: field,
				Start: start, End: start.Add(r.w.Window), Time: start.Add(r.w.Window),
				ID: AlertID(r.ruleID, key, WindowAnchor(start)),
			}}
			if r.admin {
				acc.alert.Users = append(acc.alert.Users, key)
			}
			accs[k] = acc
			order = append(order, k)
		}
		a := &acc.alert
		a.Evidence = append(a.Evidence, f.id)
		a.Users = append(a.Users, f.user)
		a.IPs = append(a.IPs, f.ip)
		a.Tenants = append(a.Tenants, f.tenant)
		if r.distinct {
			acc.members[member] = true
			a.Count = len(acc.members)
		} else {
			a.Count++
		}
	}
	var out []Alert
	for _, k := range order {
		if a := accs[k].alert; a.Count >= r.w.Threshold {
			out = append(out, a)
		}
	}
	return out
}
