package entra

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Record is one Entra audit record, decoded tolerantly: it accepts the
// diagnostic-settings shape (audit fields under "properties") and the
// Microsoft Graph directoryAudit shape (the same fields at the top level).
// Keys match case-insensitively, as the published samples use both
// "Level" and "level", "type" and "Type".
type Record struct {
	// Diagnostic-settings envelope fields.
	Time             Text   `json:"time"`
	ResourceID       Text   `json:"resourceId"`
	OperationName    Text   `json:"operationName"`
	OperationVersion Text   `json:"operationVersion"`
	Category         Text   `json:"category"`
	TenantID         Text   `json:"tenantId"`
	CallerIPAddress  Text   `json:"callerIpAddress"`
	CorrelationID    Text   `json:"correlationId"`
	Props            Props  `json:"properties"`
	Properties       *Audit `json:"-"` // set by Finish

	// Graph directoryAudit fields (at the top level in that shape).
	Audit

	// shape says where the audit fields were found.
	graph bool
}

// Audit holds the fields of an audit entry (the "properties" object of a
// diagnostic record, or a whole directoryAudit).
type Audit struct {
	ID                  Text             `json:"id"`
	Category            Text             `json:"category"`
	CorrelationID       Text             `json:"correlationId"`
	Result              Text             `json:"result"`
	ResultReason        Text             `json:"resultReason"`
	ActivityDisplayName Text             `json:"activityDisplayName"`
	ActivityDateTime    Text             `json:"activityDateTime"`
	CreatedDateTime     Text             `json:"createdDateTime"`
	LoggedByService     Text             `json:"loggedByService"`
	OperationType       Text             `json:"operationType"`
	UserAgent           Text             `json:"userAgent"`
	InitiatedBy         InitiatedBy      `json:"initiatedBy"`
	TargetResources     []TargetResource `json:"targetResources"`
	TargetResource      []TargetResource `json:"targetResource"` // a spelling seen in Graph documentation
	AdditionalDetails   KeyValues        `json:"additionalDetails"`
}

// InitiatedBy is the actor: a user or an application.
type InitiatedBy struct {
	User *UserIdentity `json:"user"`
	App  *AppIdentity  `json:"app"`
}

// UserIdentity is an initiating user.
type UserIdentity struct {
	ID                Text `json:"id"`
	DisplayName       Text `json:"displayName"`
	UserPrincipalName Text `json:"userPrincipalName"`
	IPAddress         Text `json:"ipAddress"`
}

// AppIdentity is an initiating application.
type AppIdentity struct {
	AppID                Text `json:"appId"`
	DisplayName          Text `json:"displayName"`
	ServicePrincipalID   Text `json:"servicePrincipalId"`
	ServicePrincipalName Text `json:"servicePrincipalName"`
}

// TargetResource is a resource the activity acted on.
type TargetResource struct {
	ID                 Text               `json:"id"`
	DisplayName        Text               `json:"displayName"`
	Type               Text               `json:"type"`
	ODataType          Text               `json:"@odata.type"`
	UserPrincipalName  Text               `json:"userPrincipalName"`
	GroupType          Text               `json:"groupType"`
	ModifiedProperties []ModifiedProperty `json:"modifiedProperties"`
}

// ModifiedProperty is one changed property.
type ModifiedProperty struct {
	DisplayName Text `json:"displayName"`
	OldValue    Text `json:"oldValue"`
	NewValue    Text `json:"newValue"`
}

// IsUser reports whether the target is a user account. Types arrive as
// "User", "user" or only as an @odata.type such as
// "#microsoft.graph.targetResourceUser".
func (t *TargetResource) IsUser() bool {
	if strings.EqualFold(string(t.Type), "user") {
		return true
	}
	return t.Type == "" && strings.HasSuffix(strings.ToLower(string(t.ODataType)), "user")
}

// Finish completes decoding: it must be called after json.Unmarshal into
// the record. It settles which shape the record has.
func (r *Record) Finish() {
	r.Properties = r.Props.Audit
	r.graph = r.Properties == nil && r.Audit.ActivityDisplayName != "" && r.Audit.LoggedByService != ""
	if r.graph {
		// The top-level category and correlationId shadow the embedded
		// ones while decoding; in this shape they are the audit's own.
		r.Audit.Category = r.Category
		r.Audit.CorrelationID = r.CorrelationID
	}
}

// Props is the "properties" field: an object, or a JSON string holding one.
type Props struct{ *Audit }

// UnmarshalJSON implements json.Unmarshaler.
func (p *Props) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("properties: %w", err)
		}
		b = bytes.TrimSpace([]byte(s))
	}
	if len(b) == 0 || b[0] != '{' {
		return nil
	}
	p.Audit = new(Audit)
	// A field of an unexpected type is reported but does not stop decoding
	// of the rest (encoding/json fills what it can).
	if err := json.Unmarshal(b, p.Audit); err != nil {
		return err
	}
	return nil
}

// IsTypeError reports whether err only says that some field had an
// unexpected JSON type; the rest of the record was still decoded.
func IsTypeError(err error) bool {
	var te *json.UnmarshalTypeError
	return errors.As(err, &te)
}

// IsGraph reports whether the record is a Graph directoryAudit, recognised
// by shape: activityDisplayName and loggedByService at the top level.
func (r *Record) IsGraph() bool { return r.graph }

// Entry returns the audit fields whichever shape they came in.
func (r *Record) Entry() *Audit {
	if r.Properties != nil {
		return r.Properties
	}
	return &r.Audit
}

// Text is a string field that also accepts numbers, booleans and null, as
// several fields (result, durationMs, Level) arrive as either.
type Text string

// UnmarshalJSON implements json.Unmarshaler.
func (t *Text) UnmarshalJSON(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		// The scanner has validated the JSON already: a string without
		// escapes is its bytes between the quotes.
		if len(b) >= 2 && bytes.IndexByte(b, '\\') < 0 {
			*t = Text(b[1 : len(b)-1])
			return nil
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = Text(s)
	case 'n':
		*t = ""
	case '{', '[':
		// Structured where text was expected: keep it compact as text so
		// nothing is lost.
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err != nil {
			return err
		}
		*t = Text(buf.String())
	default:
		*t = Text(b)
	}
	return nil
}

// KeyValue is one additionalDetails entry.
type KeyValue struct {
	Key   string
	Value string
}

// KeyValues is additionalDetails: usually [{"key":..,"value":..}], but
// also seen as an object or as a plain string ("None").
type KeyValues []KeyValue

// UnmarshalJSON implements json.Unmarshaler.
func (kv *KeyValues) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '[':
		var list []struct {
			Key   Text `json:"key"`
			Value Text `json:"value"`
		}
		if err := json.Unmarshal(b, &list); err != nil {
			return err
		}
		for _, e := range list {
			*kv = append(*kv, KeyValue{string(e.Key), string(e.Value)})
		}
	case '{':
		var m map[string]Text
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		for k, v := range m {
			*kv = append(*kv, KeyValue{k, string(v)})
		}
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s = strings.TrimSpace(s); s != "" && !strings.EqualFold(s, "none") {
			*kv = append(*kv, KeyValue{"value", s})
		}
	}
	return nil
}

// Get returns the value of the first entry whose key matches name
// case-insensitively.
func (kv KeyValues) Get(name string) string {
	for _, e := range kv {
		if strings.EqualFold(e.Key, name) {
			return e.Value
		}
	}
	return ""
}
