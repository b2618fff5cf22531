// Package eventstore reads back the ECS documents the exporter wrote, for
// the commands that answer questions about them (reports, detection): from
// an Elasticsearch or OpenSearch output, or from NDJSON files written by
// the file output. Every reader answers the same Query the same way, so a
// report or a rule gives the same result whichever store it reads.
package eventstore

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
)

// Query selects documents. Empty lists select everything; within a list any
// value matches (or), and the lists must all match (and).
type Query struct {
	// From and To bound @timestamp: From <= t < To. A zero bound is open.
	From, To time.Time
	Tenants  []string // cloud.account.id
	Domains  []string // user.target.domain, or user.domain when there is no target; case-insensitive
	Groups   []string // user.target.group.id or user.target.group.name; names case-insensitive
	Users    []string // user.target.name, user.target.id, user.name or user.id; UPNs case-insensitive
	Actions  []string // event.action
	Outcomes []string // event.outcome
}

// Reader scans the documents that match a query.
type Reader interface {
	// Scan calls fn for every matching document, in order of @timestamp and
	// then event.id, until fn returns an error (returned as is) or the
	// documents end. The event passed to fn is valid only during the call.
	Scan(ctx context.Context, q Query, fn func(*ecs.Event) error) error
	// Describe says what the reader reads, for report manifests: the index
	// pattern and the store's address, or each input file with its SHA-256.
	Describe() Source
}

// Source describes where documents were read from.
type Source struct {
	Kind    string `json:"kind"`              // elasticsearch, opensearch, files
	Address string `json:"address,omitempty"` // the store's URL, without credentials
	Index   string `json:"index,omitempty"`   // index pattern
	Files   []File `json:"files,omitempty"`
}

// File is one input file with its digest.
type File struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Match reports whether e matches q. It is the definition every reader
// follows; the query readers push the same conditions to the store.
func (q *Query) Match(e *ecs.Event) bool {
	if e.Event.Kind == ecs.KindAlert {
		return false
	}
	if !q.From.IsZero() && e.Time.Before(q.From) {
		return false
	}
	if !q.To.IsZero() && !e.Time.Before(q.To) {
		return false
	}
	if len(q.Tenants) > 0 && !slices.Contains(q.Tenants, e.Cloud.Account.ID) {
		return false
	}
	if len(q.Domains) > 0 && !containsFold(q.Domains, Domain(e)) {
		return false
	}
	if len(q.Groups) > 0 && !anyIn(q.Groups, e.User.Target.Group.ID, false) && !anyIn(q.Groups, e.User.Target.Group.Name, true) {
		return false
	}
	if len(q.Users) > 0 && !containsFold(q.Users, e.User.Target.Name) && !slices.Contains(q.Users, e.User.Target.ID) &&
		!containsFold(q.Users, e.User.Name) && !slices.Contains(q.Users, e.User.ID) {
		return false
	}
	if len(q.Actions) > 0 && !slices.Contains(q.Actions, e.Event.Action) {
		return false
	}
	if len(q.Outcomes) > 0 && !slices.Contains(q.Outcomes, e.Event.Outcome) {
		return false
	}
	return true
}

// Domain is the domain a document is filed under: the target account's,
// else the initiating user's.
func Domain(e *ecs.Event) string {
	if e.User.Target.Domain != "" {
		return e.User.Target.Domain
	}
	return e.User.Domain
}

func containsFold(list []string, v string) bool {
	if v == "" {
		return false
	}
	for _, s := range list {
		if strings.EqualFold(s, v) {
			return true
		}
	}
	return false
}

func anyIn(want, have []string, fold bool) bool {
	for _, h := range have {
		if fold && containsFold(want, h) || !fold && slices.Contains(want, h) {
			return true
		}
	}
	return false
}

// Less orders documents as Scan hands them out: by @timestamp, then by
// event.id.
func Less(a, b *ecs.Event) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.Before(b.Time)
	}
	return a.Event.ID < b.Event.ID
}

// Compare is Less as a comparison for slices.SortFunc.
func Compare(a, b *ecs.Event) int {
	switch {
	case Less(a, b):
		return -1
	case Less(b, a):
		return 1
	}
	return 0
}
