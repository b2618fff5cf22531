// Package bulktest holds what the tests of the search-engine outputs share:
// documents to write, and the checks every output must pass against a real
// node of its engine.
package bulktest

import (
	"fmt"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
)

// Event builds a complete SSPR document, about 1.5 KB of JSON.
func Event(id string, at time.Time) ecs.Event {
	return ecs.Event{
		Timestamp: at.UTC().Format(time.RFC3339Nano),
		Time:      at,
		ECS:       ecs.ECSMeta{Version: ecs.Version},
		Event: ecs.EventMeta{
			Kind: "event", Category: []string{"iam"}, Type: []string{"change", "user"},
			Action: "password-reset", Outcome: "success", ID: id, Provider: "Self-service Password Management",
			Dataset: ecs.Dataset, Original: `{"id":"` + id + `"}`,
		},
		User: ecs.User{Name: "alice@contoso.com", ID: "u-1", Domain: "contoso.com",
			Target: ecs.TargetUser{Name: "alice@contoso.com", ID: "u-1", Domain: "contoso.com"}},
		Related:   ecs.Related{User: []string{"alice@contoso.com"}, IP: []string{"203.0.113.7"}},
		Source:    ecs.Source{IP: "203.0.113.7"},
		Cloud:     ecs.Cloud{Provider: "azure", Account: ecs.CloudAccount{ID: "tenant-1"}},
		UserAgent: ecs.UserAgent{Original: "Mozilla/5.0"},
		Azure: ecs.Azure{CorrelationID: "c-" + id, TenantID: "tenant-1", AuditLogs: ecs.AuditLogs{
			Category: "UserManagement", OperationName: "Reset password (self-service)", Result: "success",
			LoggedByService:   "Self-service Password Management",
			AdditionalDetails: map[string]string{"MethodsUsed": "Email", "Some.Unknown key": "x"},
			TargetResources: []ecs.TargetResource{{ID: "u-1", Type: "User", UserPrincipalName: "alice@contoso.com",
				ModifiedProperties: []ecs.ModifiedProperty{{DisplayName: "PasswordHash", NewValue: "x"}}}},
		}},
	}
}

// Events builds n documents with ids prefix-00000..., a second apart from at.
func Events(prefix string, n int, at time.Time) []ecs.Event {
	out := make([]ecs.Event, n)
	for i := range out {
		out[i] = Event(fmt.Sprintf("%s-%05d", prefix, i), at.Add(time.Duration(i)*time.Second))
	}
	return out
}

// SizedEvents are Events of about 1.5 KB of JSON each (with the action
// line), the size of a typical SSPR event with its original record
// trimmed, for benchmarks.
func SizedEvents(prefix string, n int) []ecs.Event {
	docs := Events(prefix, n, time.Date(2026, 11, 14, 9, 30, 0, 0, time.UTC))
	for i := range docs {
		docs[i].Event.Original = strings.Repeat("o", 400)
	}
	return docs
}
