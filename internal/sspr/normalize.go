package sspr

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/entra"
)

// Options tune normalization.
type Options struct {
	PreserveOriginal bool   // copy the raw record to event.original
	DefaultTenantID  string // cloud.account.id when the record names no tenant
}

// Verdict is what classification decided for one record.
type Verdict int

// Verdicts.
const (
	Drop        Verdict = iota // not an SSPR event
	Unsupported                // an SSPR activity in the retired 2018 preview schema
	Event                      // an SSPR event
)

// ErrNoTime marks an SSPR record with no parseable time.
var ErrNoTime = errors.New("no parseable activityDateTime or time")

// Classify decides whether a decoded record is an SSPR event and which.
func Classify(c *Catalog, r *entra.Record) (Activity, Verdict) {
	e := r.Entry()
	name := string(e.ActivityDisplayName)
	if name == "" {
		name = string(r.OperationName)
	}
	act, ok := c.Lookup(name, string(e.LoggedByService))
	if !ok {
		return Activity{}, Drop
	}
	if r.IsGraph() {
		return act, Event
	}
	switch strings.ToLower(strings.TrimSpace(string(r.Category))) {
	case "auditlogs":
		return act, Event
	case "audit":
		return act, Unsupported
	}
	return Activity{}, Drop
}

// Normalize turns an SSPR record into its ECS document. raw is the record as
// read, used for event.original and for the fallback event.id.
func Normalize(raw []byte, r *entra.Record, act Activity, opts Options) (ecs.Event, error) {
	e := r.Entry()
	var ev ecs.Event
	ts, err := recordTime(r)
	if err != nil {
		return ecs.Event{}, err
	}
	ev.Time = ts
	ev.Timestamp = formatTime(ts)
	ev.ECS.Version = ecs.Version

	name := strings.TrimSpace(string(e.ActivityDisplayName))
	if name == "" {
		name = strings.TrimSpace(string(r.OperationName))
	}
	if act.Action == "" {
		if name == "" {
			return ecs.Event{}, errors.New("SSPR record has no activity name")
		}
		return ecs.Event{}, fmt.Errorf("activity name %q has no ASCII letter or digit to make an action from", name)
	}
	category := act.Category
	if category == "" {
		category = CategoryIAM
	}
	ev.Event = ecs.EventMeta{
		Kind:     "event",
		Category: []string{category},
		Type:     slices.Clone(act.Type),
		Action:   act.Action,
		Outcome:  outcome(string(e.Result)),
		ID:       strings.TrimSpace(string(e.ID)),
		Reason:   strings.TrimSpace(string(e.ResultReason)),
		Provider: strings.TrimSpace(string(e.LoggedByService)),
		Dataset:  ecs.Dataset,
	}
	// Users: the target account and the initiator.
	var rel relatedSet
	targets := e.TargetResources
	if len(targets) == 0 {
		targets = e.TargetResource
	}
	if t := targetUser(targets); t != nil {
		upn := strings.TrimSpace(string(t.UserPrincipalName))
		ev.User.Target = ecs.TargetUser{
			ID:       strings.TrimSpace(string(t.ID)),
			Name:     upn,
			FullName: strings.TrimSpace(string(t.DisplayName)),
			Domain:   domainOf(upn),
		}
	}
	for i := range targets {
		if targets[i].IsUser() {
			rel.user(string(targets[i].ID))
			rel.user(string(targets[i].UserPrincipalName))
		}
	}
	if u := e.InitiatedBy.User; u != nil {
		upn := strings.TrimSpace(string(u.UserPrincipalName))
		ev.User.ID = strings.TrimSpace(string(u.ID))
		ev.User.Name = upn
		ev.User.FullName = strings.TrimSpace(string(u.DisplayName))
		ev.User.Domain = domainOf(upn)
		rel.user(string(u.ID))
		rel.user(upn)
	}

	// Addresses.
	var userIP string
	if u := e.InitiatedBy.User; u != nil {
		userIP = string(u.IPAddress)
	}
	for _, cand := range []string{userIP, string(r.CallerIPAddress)} {
		if a, ok := parseIP(cand); ok {
			if ev.Source.IP == "" {
				ev.Source.IP = a
			}
			rel.ip(a)
		}
	}
	for _, kv := range e.AdditionalDetails {
		if isIPKey(kv.Key) {
			if a, ok := parseIP(kv.Value); ok {
				rel.ip(a)
			}
		}
	}
	ev.Related = ecs.Related{User: rel.users, IP: rel.ips}

	// Tenant.
	tenant := strings.TrimSpace(string(r.TenantID))
	if tenant == "" {
		tenant = tenantFromResourceID(string(r.ResourceID))
	}
	if tenant == "" {
		tenant = opts.DefaultTenantID
	}
	ev.Cloud = ecs.Cloud{Provider: "azure", Account: ecs.CloudAccount{ID: tenant}}

	ua := e.AdditionalDetails.Get("User-Agent")
	if ua == "" {
		ua = string(e.UserAgent)
	}
	ev.UserAgent.Original = strings.TrimSpace(ua)

	corr := strings.TrimSpace(string(e.CorrelationID))
	if corr == "" {
		corr = strings.TrimSpace(string(r.CorrelationID))
	}
	ev.Azure = ecs.Azure{
		CorrelationID: corr,
		TenantID:      tenant,
		ResourceID:    strings.TrimSpace(string(r.ResourceID)),
		AuditLogs: ecs.AuditLogs{
			Category:          strings.TrimSpace(string(e.Category)),
			OperationName:     name,
			OperationType:     strings.TrimSpace(string(e.OperationType)),
			OperationVersion:  strings.TrimSpace(string(r.OperationVersion)),
			Result:            strings.TrimSpace(string(e.Result)),
			ResultReason:      ev.Event.Reason,
			LoggedByService:   ev.Event.Provider,
			AdditionalDetails: detailsMap(e.AdditionalDetails),
			TargetResources:   targetResources(targets),
		},
	}
	if a := e.InitiatedBy.App; a != nil && e.InitiatedBy.User == nil {
		ev.Azure.AuditLogs.InitiatedBy.App = ecs.App{
			AppID:                strings.TrimSpace(string(a.AppID)),
			DisplayName:          strings.TrimSpace(string(a.DisplayName)),
			ServicePrincipalID:   strings.TrimSpace(string(a.ServicePrincipalID)),
			ServicePrincipalName: strings.TrimSpace(string(a.ServicePrincipalName)),
		}
	}

	if ev.Event.ID == "" {
		// Hashed before the meaning is added, so that a record without an
		// id keeps the id earlier versions gave it.
		id, err := contentID(&ev)
		if err != nil {
			return ecs.Event{}, err
		}
		ev.Event.ID = id
	}
	ev.Entra.SSPR = meaning(&ev, act, e)
	if opts.PreserveOriginal {
		ev.Event.Original = string(raw)
	}
	return ev, nil
}

// meaning is what the record says for the password and security-info
// trail: who acted, the flow step and method, a block, the flow and the
// writeback agent. It sets event.outcome for blocks, which Microsoft logs
// with result Success (the block itself succeeded).
func meaning(ev *ecs.Event, act Activity, e *entra.Audit) ecs.SSPR {
	m := ecs.SSPR{
		Initiator: initiator(act, e, &ev.User),
		Flow:      ecs.Flow{ID: ev.Azure.CorrelationID},
		Writeback: writeback(e.AdditionalDetails.Get("OnPremisesAgent")),
	}
	if hasSteps(act.Action) {
		m.Step, m.Method, _ = Step(ev.Event.Reason)
	}
	if act.Action == ActionBlocked || m.Step == StepBlocked {
		m.Blocked = true
		ev.Event.Outcome = "failure"
	}
	return m
}

// initiator says who acted: an application when no user initiated the
// activity, else what the catalog entry says, else whether the initiating
// user is the target (acting on their own account) or someone else.
func initiator(act Activity, e *entra.Audit, u *ecs.User) string {
	if e.InitiatedBy.User == nil && e.InitiatedBy.App != nil {
		return InitiatorApp
	}
	if act.Initiator != "" {
		return act.Initiator
	}
	t := &u.Target
	switch {
	case u.ID != "" && t.ID != "":
		if strings.EqualFold(u.ID, t.ID) {
			return InitiatorUser
		}
		return InitiatorAdmin
	case u.Name != "" && t.Name != "":
		if strings.EqualFold(u.Name, t.Name) {
			return InitiatorUser
		}
		return InitiatorAdmin
	}
	return InitiatorUser
}

// Writeback agents: entra.sspr.writeback values.
const (
	WritebackNone         = "none"          // a cloud-only reset
	WritebackEntraConnect = "entra-connect" // written back by the Microsoft Entra Connect agent
	WritebackCloudSync    = "cloud-sync"    // written back by the Microsoft Entra Cloud Sync agent
)

// writeback maps the OnPremisesAgent detail of an admin reset, whose
// values the SSPR reporting page lists as None, Microsoft Entra Connect
// and CloudSync; the product's former names (Azure AD Connect, Azure
// Active Directory Connect) are the same agent. Other values give none.
func writeback(agent string) string {
	k := strings.Join(strings.Fields(foldString(agent)), " ")
	switch {
	case k == "":
		return ""
	case k == "none":
		return WritebackNone
	case k == "cloudsync" || k == "cloud sync" || strings.HasSuffix(k, " cloud sync") || strings.HasSuffix(k, " cloudsync"):
		return WritebackCloudSync
	case strings.HasSuffix(k, " connect") && (strings.Contains(k, "entra") || strings.Contains(k, "azure") || strings.Contains(k, "aad")):
		return WritebackEntraConnect
	}
	return ""
}

// outcome maps the audit result to event.outcome.
func outcome(result string) string {
	switch strings.ToLower(strings.TrimSpace(result)) {
	case "success", "0":
		return "success"
	case "failure", "1", "timeout", "2":
		return "failure"
	}
	return "unknown"
}

// targetUser picks the affected account: the first target of type User.
func targetUser(ts []entra.TargetResource) *entra.TargetResource {
	for i := range ts {
		if ts[i].IsUser() {
			return &ts[i]
		}
	}
	return nil
}

func domainOf(upn string) string {
	if i := strings.LastIndexByte(upn, '@'); i >= 0 && i+1 < len(upn) {
		return upn[i+1:]
	}
	return ""
}

// parseIP returns the canonical form of an address, accepting ip:port and
// [ip]:port, unmapping IPv4-mapped IPv6 and dropping zones. Unspecified and
// unparseable values (placeholders, "<null>", "") are refused.
func parseIP(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(s)
		if err2 != nil {
			return "", false
		}
		a = ap.Addr()
	}
	a = a.Unmap().WithZone("")
	if !a.IsValid() || a.IsUnspecified() {
		return "", false
	}
	return a.String(), true
}

// isIPKey says whether an additionalDetails key names an address.
func isIPKey(k string) bool {
	k = strings.ToLower(k)
	return k == "ipaddr" || k == "ipaddress" || k == "ip address" || k == "clientip" || k == "client ip"
}

// tenantFromResourceID reads the tenant of "/tenants/<id>/providers/...".
func tenantFromResourceID(id string) string {
	const p = "/tenants/"
	i := strings.Index(strings.ToLower(id), p)
	if i < 0 {
		return ""
	}
	rest := id[i+len(p):]
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		rest = rest[:j]
	}
	return strings.TrimSpace(rest)
}

func detailsMap(kv entra.KeyValues) map[string]string {
	var m map[string]string
	for _, e := range kv {
		k, v := strings.TrimSpace(e.Key), strings.TrimSpace(e.Value)
		if k == "" || v == "" {
			continue
		}
		if m == nil {
			m = make(map[string]string, len(kv))
		}
		if _, dup := m[k]; !dup {
			m[k] = v
		}
	}
	return m
}

func targetResources(ts []entra.TargetResource) []ecs.TargetResource {
	var out []ecs.TargetResource
	for _, t := range ts {
		typ := strings.TrimSpace(string(t.Type))
		if typ == "" {
			typ = strings.TrimSpace(string(t.ODataType))
		}
		o := ecs.TargetResource{
			ID:                strings.TrimSpace(string(t.ID)),
			DisplayName:       strings.TrimSpace(string(t.DisplayName)),
			Type:              typ,
			UserPrincipalName: strings.TrimSpace(string(t.UserPrincipalName)),
			GroupType:         strings.TrimSpace(string(t.GroupType)),
		}
		for _, p := range t.ModifiedProperties {
			mp := ecs.ModifiedProperty{
				DisplayName: strings.TrimSpace(string(p.DisplayName)),
				OldValue:    string(p.OldValue),
				NewValue:    string(p.NewValue),
			}
			if mp != (ecs.ModifiedProperty{}) {
				o.ModifiedProperties = append(o.ModifiedProperties, mp)
			}
		}
		if o.ID != "" || o.DisplayName != "" || o.Type != "" || o.UserPrincipalName != "" || len(o.ModifiedProperties) > 0 {
			out = append(out, o)
		}
	}
	return out
}

// relatedSet collects related.user and related.ip without duplicates, in
// the order first seen.
type relatedSet struct{ users, ips []string }

func (r *relatedSet) user(s string) {
	if s = strings.TrimSpace(s); s != "" && !slices.Contains(r.users, s) {
		r.users = append(r.users, s)
	}
}

func (r *relatedSet) ip(s string) {
	if !slices.Contains(r.ips, s) {
		r.ips = append(r.ips, s)
	}
}

// contentID is the event.id of a record that has none: a hash of its
// normalized content, so a replay of the same record gets the same id.
func contentID(ev *ecs.Event) (string, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return "", fmt.Errorf("hash record: %w", err)
	}
	sum := sha256.Sum256(b)
	return "sha256-" + hex.EncodeToString(sum[:16]), nil
}
