package detect

import (
	"strconv"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore"
)

// fact is what the rules need of one document, copied out of it because
// a scanned event is valid only during the callback.
type fact struct {
	id      string
	t       time.Time
	action  string
	outcome string
	// user is the user key: user.target.name as stored, else user.target.id;
	// userField says which.
	user, userField string
	// admin is the initiating account: user.name, else user.id.
	admin, adminField string
	ip, country, asn  string
	domain            string
	groups            []string
	privileged        bool
	tenant            string
	// flow is the reset attempt the event belongs to: entra.sspr.flow.id,
	// else the correlation id.
	flow string
	// byOther: an admin or an application acted on the account
	// (entra.sspr.initiator), so the event's place is theirs, not the user's.
	byOther bool
}

func (e *Engine) fact(ev *ecs.Event) fact {
	f := fact{
		id: ev.Event.ID, t: ev.Time.UTC(), action: ev.Event.Action, outcome: ev.Event.Outcome,
		ip: ev.Source.IP, country: ev.Source.Geo.CountryISOCode,
		domain: eventstore.Domain(ev), tenant: ev.Cloud.Account.ID,
		flow: ev.Entra.SSPR.Flow.ID,
	}
	if f.flow == "" {
		f.flow = ev.Azure.CorrelationID
	}
	switch ev.Entra.SSPR.Initiator {
	case "admin", "app":
		f.byOther = true
	}
	if f.t.IsZero() {
		f.t, _ = time.Parse(time.RFC3339Nano, ev.Timestamp)
		f.t = f.t.UTC()
	}
	switch {
	case ev.User.Target.Name != "":
		f.user, f.userField = ev.User.Target.Name, "user.target.name"
	case ev.User.Target.ID != "":
		f.user, f.userField = ev.User.Target.ID, "user.target.id"
	}
	switch {
	case ev.User.Name != "":
		f.admin, f.adminField = ev.User.Name, "user.name"
	case ev.User.ID != "":
		f.admin, f.adminField = ev.User.ID, "user.id"
	}
	if n := ev.Source.AS.Number; n != 0 {
		f.asn = strconv.FormatInt(n, 10)
	}
	if len(ev.User.Target.Group.Name) > 0 {
		f.groups = append([]string(nil), ev.User.Target.Group.Name...)
	}
	for _, r := range ev.User.Target.Roles {
		if e.roles[strings.ToLower(r)] {
			f.privileged = true
			break
		}
	}
	return f
}

// failure is a failed or blocked reset or unlock attempt.
func (f *fact) failure() bool {
	if f.action == "password-reset-blocked" {
		return true
	}
	if f.outcome != "failure" {
		return false
	}
	switch f.action {
	case "password-reset", "password-reset-progress", "password-reset-started", "account-unlock":
		return true
	}
	return false
}

// reset is a successful self-service password reset.
func (f *fact) reset() bool { return f.action == "password-reset" && f.outcome == "success" }

// adminReset is a successful password reset by an administrator.
func (f *fact) adminReset() bool {
	return f.action == "password-reset-by-admin" && f.outcome == "success"
}

// secInfo is a change of the user's own security info.
func (f *fact) secInfo() bool {
	switch f.action {
	case "security-info-registered", "security-info-updated", "security-info-default-changed",
		"security-info-deleted", "security-info-saved":
		return true
	}
	return false
}

// adminSecInfo is a change of a user's security info by an administrator.
func (f *fact) adminSecInfo() bool {
	return f.action == "admin-security-info-registered" || f.action == "admin-security-info-updated"
}
