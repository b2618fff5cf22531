package scenario

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/entra"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
)

// Activity names of the records written, as Entra logs them.
const (
	actProgress    = "Self-service password reset flow activity progress"
	actReset       = "Reset password (self-service)"
	actBlocked     = "Blocked from self-service password reset"
	actUnlock      = "Unlock user account (self-service)"
	actAdminReset  = "Reset password (by admin)"
	actRegistered  = "User registered security info"
	actUpdated     = "User updated security info"
	actDefault     = "User changed default security info"
	actReviewed    = "User reviewed security info"
	actAdminSecReg = "Admin registered security info"
)

// services that log each activity.
const (
	svcSSPR = "Self-service Password Management"
	svcAuth = "Authentication Methods"
)

// record is one audit record to write.
type record struct {
	at       time.Time
	activity string
	service  string
	success  bool
	reason   string
	corr     string
	id       string
	actor    *person // who acted; the target when nil
	target   *person
	from     place
}

const userAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"

// raw is the record as a diagnostic-settings audit record.
func (r *record) raw(tenant string) []byte {
	actor := r.actor
	if actor == nil {
		actor = r.target
	}
	result := "failure"
	if r.success {
		result = "success"
	}
	ts := r.at.UTC().Format("2006-01-02T15:04:05.0000000Z")
	type user struct {
		ID          string   `json:"id"`
		DisplayName string   `json:"displayName"`
		UPN         string   `json:"userPrincipalName"`
		IPAddress   string   `json:"ipAddress"`
		Roles       []string `json:"roles"`
	}
	type target struct {
		ID                  string `json:"id"`
		DisplayName         string `json:"displayName"`
		Type                string `json:"type"`
		UPN                 string `json:"userPrincipalName"`
		ModifiedProperties  []any  `json:"modifiedProperties"`
		AdministrativeUnits []any  `json:"administrativeUnits"`
	}
	type kv struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	type props struct {
		ID                  string         `json:"id"`
		Category            string         `json:"category"`
		CorrelationID       string         `json:"correlationId"`
		Result              string         `json:"result"`
		ResultReason        string         `json:"resultReason"`
		ActivityDisplayName string         `json:"activityDisplayName"`
		ActivityDateTime    string         `json:"activityDateTime"`
		LoggedByService     string         `json:"loggedByService"`
		OperationType       string         `json:"operationType"`
		InitiatedBy         map[string]any `json:"initiatedBy"`
		TargetResources     []target       `json:"targetResources"`
		AdditionalDetails   []kv           `json:"additionalDetails"`
	}
	rec := struct {
		Time             string `json:"time"`
		ResourceID       string `json:"resourceId"`
		OperationName    string `json:"operationName"`
		OperationVersion string `json:"operationVersion"`
		Category         string `json:"category"`
		TenantID         string `json:"tenantId"`
		ResultSignature  string `json:"resultSignature"`
		DurationMs       int    `json:"durationMs"`
		CallerIPAddress  string `json:"callerIpAddress"`
		CorrelationID    string `json:"correlationId"`
		Level            int    `json:"Level"`
		Properties       props  `json:"properties"`
	}{
		Time: ts, ResourceID: "/tenants/" + tenant + "/providers/Microsoft.aadiam", OperationName: r.activity,
		OperationVersion: "1.0", Category: "AuditLogs", TenantID: tenant, ResultSignature: "None",
		CallerIPAddress: r.from.ip, CorrelationID: r.corr, Level: 4,
		Properties: props{
			ID: r.id, Category: "UserManagement", CorrelationID: r.corr, Result: result, ResultReason: r.reason,
			ActivityDisplayName: r.activity, ActivityDateTime: ts, LoggedByService: r.service, OperationType: "Update",
			InitiatedBy: map[string]any{"user": user{ID: actor.id, DisplayName: actor.name, UPN: actor.upn, IPAddress: r.from.ip, Roles: []string{}}},
			TargetResources: []target{{ID: r.target.id, DisplayName: r.target.name, Type: "User", UPN: r.target.upn,
				ModifiedProperties: []any{}, AdministrativeUnits: []any{}}},
			AdditionalDetails: []kv{{Key: "User-Agent", Value: userAgent}},
		},
	}
	b, err := json.Marshal(rec)
	if err != nil {
		panic(err) // only strings and slices of them: cannot fail
	}
	return b
}

// document turns a raw record into the exporter's document: classified and
// normalized as the pipeline does, then given the fields the GeoIP and
// Microsoft Graph enrichers add.
func document(cat *sspr.Catalog, raw []byte, r *record) (ecs.Event, error) {
	var rec entra.Record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return ecs.Event{}, fmt.Errorf("scenario: decode record: %w", err)
	}
	rec.Finish()
	act, verdict := sspr.Classify(cat, &rec)
	if verdict != sspr.Event {
		return ecs.Event{}, fmt.Errorf("scenario: %q is not an SSPR activity", r.activity)
	}
	ev, err := sspr.Normalize(raw, &rec, act, sspr.Options{})
	if err != nil {
		return ecs.Event{}, fmt.Errorf("scenario: normalize %q: %w", r.activity, err)
	}
	nw := r.from.net
	ev.Source.Geo = ecs.Geo{CountryISOCode: nw.country, CountryName: nw.name}
	ev.Source.AS = ecs.AS{Number: nw.asn, Organization: ecs.ASOrganization{Name: nw.org}}
	var ids, names []string
	for _, g := range r.target.groups {
		ids = append(ids, g.id)
		names = append(names, g.name)
	}
	slices.Sort(ids)
	slices.Sort(names)
	ev.User.Target.Group = ecs.TargetGroup{ID: ids, Name: names}
	ev.User.Target.Roles = slices.Clone(r.target.roles)
	return ev, nil
}
