// Package ecs defines the Elastic Common Schema document the exporter emits
// for each self-service password reset event.
package ecs

import "time"

// Version is the ECS version the documents conform to.
const Version = "8.17.0"

// Dataset is the value of event.dataset on every document.
const Dataset = "entra.sspr"

// KindAlert is the event.kind of a detection alert, which is stored beside
// the events under the same index pattern and is not one of them.
const KindAlert = "alert"

// Event is one ECS document. Empty values are never encoded: strings and
// slices use omitempty, nested objects omitzero, so a document never carries
// null, "", [] or {}.
type Event struct {
	Timestamp string    `json:"@timestamp"`
	ECS       ECSMeta   `json:"ecs"`
	Event     EventMeta `json:"event"`
	User      User      `json:"user,omitzero"`
	Related   Related   `json:"related,omitzero"`
	Source    Source    `json:"source,omitzero"`
	Cloud     Cloud     `json:"cloud,omitzero"`
	UserAgent UserAgent `json:"user_agent,omitzero"`
	Azure     Azure     `json:"azure,omitzero"`
	Entra     Entra     `json:"entra,omitzero"`
	Time      time.Time `json:"-"` // @timestamp as a time, for index bucketing
}

// ECSMeta holds ecs.version.
type ECSMeta struct {
	Version string `json:"version"`
}

// EventMeta holds the event.* fields.
type EventMeta struct {
	Kind     string   `json:"kind"`
	Category []string `json:"category"`
	Type     []string `json:"type"`
	Action   string   `json:"action"`
	Outcome  string   `json:"outcome"`
	ID       string   `json:"id"`
	Reason   string   `json:"reason,omitempty"`
	Provider string   `json:"provider,omitempty"`
	Dataset  string   `json:"dataset"`
	Original string   `json:"original,omitempty"`
}

// User is the initiating user, with the affected user under Target.
type User struct {
	ID       string     `json:"id,omitempty"`
	Name     string     `json:"name,omitempty"`
	FullName string     `json:"full_name,omitempty"`
	Domain   string     `json:"domain,omitempty"`
	Target   TargetUser `json:"target,omitzero"`
}

// TargetUser is user.target: the account whose password or security info changed.
type TargetUser struct {
	ID       string      `json:"id,omitempty"`
	Name     string      `json:"name,omitempty"`
	FullName string      `json:"full_name,omitempty"`
	Domain   string      `json:"domain,omitempty"`
	Group    TargetGroup `json:"group,omitzero"`
	Roles    []string    `json:"roles,omitempty"` // directory roles, from Microsoft Graph
}

// TargetGroup holds user.target.group.id and .name: the groups the target
// account is a member of (directly or through other groups), from
// Microsoft Graph. The two lists are each sorted; they are not paired by
// position.
type TargetGroup struct {
	ID   []string `json:"id,omitempty"`
	Name []string `json:"name,omitempty"`
}

// Related holds related.user and related.ip.
type Related struct {
	User []string `json:"user,omitempty"`
	IP   []string `json:"ip,omitempty"`
}

// Source holds source.ip and where that address is, from GeoIP databases.
type Source struct {
	IP  string `json:"ip,omitempty"`
	Geo Geo    `json:"geo,omitzero"`
	AS  AS     `json:"as,omitzero"`
}

// Geo holds source.geo.*.
type Geo struct {
	CityName       string    `json:"city_name,omitempty"`
	CountryISOCode string    `json:"country_iso_code,omitempty"`
	CountryName    string    `json:"country_name,omitempty"`
	RegionISOCode  string    `json:"region_iso_code,omitempty"`
	RegionName     string    `json:"region_name,omitempty"`
	Location       *GeoPoint `json:"location,omitempty"`
}

// GeoPoint is an ECS geo_point as an object.
type GeoPoint struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// AS holds source.as.*: the autonomous system the address belongs to.
type AS struct {
	Number       int64          `json:"number,omitempty"`
	Organization ASOrganization `json:"organization,omitzero"`
}

// ASOrganization holds source.as.organization.name.
type ASOrganization struct {
	Name string `json:"name,omitempty"`
}

// Cloud holds cloud.provider and cloud.account.id (the Entra tenant).
type Cloud struct {
	Provider string       `json:"provider,omitempty"`
	Account  CloudAccount `json:"account,omitzero"`
}

// CloudAccount holds cloud.account.id.
type CloudAccount struct {
	ID string `json:"id,omitempty"`
}

// UserAgent holds user_agent.original.
type UserAgent struct {
	Original string `json:"original,omitempty"`
}

// Azure holds the source details that have no ECS field.
type Azure struct {
	CorrelationID string    `json:"correlation_id,omitempty"`
	TenantID      string    `json:"tenant_id,omitempty"`
	ResourceID    string    `json:"resource_id,omitempty"`
	AuditLogs     AuditLogs `json:"auditlogs,omitzero"`
}

// AuditLogs holds azure.auditlogs.*, named after Elastic's Azure integration
// where it has a name for the field.
type AuditLogs struct {
	Category          string            `json:"category,omitempty"`
	OperationName     string            `json:"operation_name,omitempty"`
	OperationType     string            `json:"operation_type,omitempty"`
	OperationVersion  string            `json:"operation_version,omitempty"`
	Result            string            `json:"result,omitempty"`
	ResultReason      string            `json:"result_reason,omitempty"`
	LoggedByService   string            `json:"logged_by_service,omitempty"`
	AdditionalDetails map[string]string `json:"additional_details,omitempty"`
	InitiatedBy       InitiatedBy       `json:"initiated_by,omitzero"`
	TargetResources   []TargetResource  `json:"target_resources,omitempty"`
}

// InitiatedBy names the application that initiated the activity, when an
// application rather than a user did.
type InitiatedBy struct {
	App App `json:"app,omitzero"`
}

// App is an initiating application.
type App struct {
	AppID                string `json:"app_id,omitempty"`
	DisplayName          string `json:"display_name,omitempty"`
	ServicePrincipalID   string `json:"service_principal_id,omitempty"`
	ServicePrincipalName string `json:"service_principal_name,omitempty"`
}

// TargetResource is one entry of the record's targetResources.
type TargetResource struct {
	ID                 string             `json:"id,omitempty"`
	DisplayName        string             `json:"display_name,omitempty"`
	Type               string             `json:"type,omitempty"`
	UserPrincipalName  string             `json:"user_principal_name,omitempty"`
	GroupType          string             `json:"group_type,omitempty"`
	ModifiedProperties []ModifiedProperty `json:"modified_properties,omitempty"`
}

// ModifiedProperty is one changed property of a target resource.
type ModifiedProperty struct {
	DisplayName string `json:"display_name,omitempty"`
	OldValue    string `json:"old_value,omitempty"`
	NewValue    string `json:"new_value,omitempty"`
}

// Entra holds the fields under the entra custom namespace.
type Entra struct {
	SSPR SSPR `json:"sspr,omitzero"`
}

// SSPR holds entra.sspr.*: what the audit record means for the password
// and security-info trail, beyond what ECS fields say.
type SSPR struct {
	Initiator string `json:"initiator,omitempty"` // who acted: user (on their own account), admin or app
	Step      string `json:"step,omitempty"`      // the flow step a progress record reports
	Method    string `json:"method,omitempty"`    // the verification method the step used
	Blocked   bool   `json:"blocked,omitempty"`   // the user was blocked from self-service password reset
	Flow      Flow   `json:"flow,omitzero"`
	Writeback string `json:"writeback,omitempty"` // which agent wrote an admin reset back on premises
}

// Flow holds entra.sspr.flow.id: the correlation id shared by every record
// of one flow.
type Flow struct {
	ID string `json:"id,omitempty"`
}

// Tenant returns the Entra tenant id of the event.
func (e *Event) Tenant() string { return e.Cloud.Account.ID }
