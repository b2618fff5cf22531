// Package sspr decides which Entra audit records are self-service password
// reset events and turns each into one ECS document. Everything here is a
// pure function of its input: no I/O, no clock, no globals that change.
package sspr

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Activity is a catalog entry: an activityDisplayName and what it becomes.
type Activity struct {
	Name     string   `toml:"name"`     // activityDisplayName, matched case-insensitively
	Action   string   `toml:"action"`   // event.action
	Type     []string `toml:"type"`     // event.type
	Category string   `toml:"category"` // event.category; empty means iam
	// Initiator is who acts in this activity whatever the record says
	// (InitiatorUser or InitiatorAdmin); empty when the record tells (an
	// initiating user who is the target acts on their own account, another
	// user is an administrator). An activity initiated by an application
	// alone always has InitiatorApp.
	Initiator string `toml:"initiator"`
}

// Services that log the activities of the built-in catalog.
const (
	ServiceName                  = "Self-service Password Management" // loggedByService of the SSPR service
	ServiceAuthenticationMethods = "Authentication Methods"
	ServiceCoreDirectory         = "Core Directory"
)

// Event categories of catalog entries.
const (
	CategoryIAM           = "iam"
	CategoryConfiguration = "configuration"
)

// Initiators: entra.sspr.initiator values.
const (
	InitiatorUser  = "user"  // the user acted on their own account
	InitiatorAdmin = "admin" // someone acted on another user's account, or on the tenant's settings
	InitiatorApp   = "app"   // an application acted, no user
)

// Actions the normalization gives a meaning beyond the catalog entry.
const (
	ActionProgress = "password-reset-progress"
	ActionBlocked  = "password-reset-blocked"
)

// Builtin is the built-in catalog, after Microsoft's audit activity
// reference (entra-docs docs/identity/monitoring-health/reference-audit-activities.md:
// the Self-service password management, Authentication Methods and Core
// Directory tables) and its SSPR reporting page (howto-sspr-reporting.md).
var Builtin = []Activity{
	// Self-service Password Management.
	{Name: "Reset password (self-service)", Action: "password-reset", Type: []string{"user", "change"}, Initiator: InitiatorUser},
	{Name: "Self-service password reset flow activity progress", Action: ActionProgress, Type: []string{"user", "info"}, Initiator: InitiatorUser},
	// The heading of the 2017 reporting page spells the progress event so.
	{Name: "Self-serve password reset flow activity progress", Action: ActionProgress, Type: []string{"user", "info"}, Initiator: InitiatorUser},
	{Name: "Blocked from self-service password reset", Action: ActionBlocked, Type: []string{"user", "info"}, Initiator: InitiatorUser},
	{Name: "Unlock user account (self-service)", Action: "account-unlock", Type: []string{"user", "change"}, Initiator: InitiatorUser},
	{Name: "Change password (self-service)", Action: "password-change", Type: []string{"user", "change"}, Initiator: InitiatorUser},
	{Name: "Reset password (by admin)", Action: "password-reset-by-admin", Type: []string{"user", "change"}, Initiator: InitiatorAdmin},
	{Name: "Security info saved for self-service password reset", Action: "security-info-saved", Type: []string{"user", "change"}, Initiator: InitiatorUser},
	{Name: "User registered for self-service password reset", Action: "sspr-registered", Type: []string{"user", "creation"}, Initiator: InitiatorUser},
	{Name: "Enable password writeback for directory", Action: "password-writeback-enabled", Type: []string{"change"}, Category: CategoryConfiguration, Initiator: InitiatorAdmin},
	{Name: "Disable password writeback for directory", Action: "password-writeback-disabled", Type: []string{"change"}, Category: CategoryConfiguration, Initiator: InitiatorAdmin},
	{Name: "Self-service password reset policy changes", Action: "sspr-policy-changed", Type: []string{"change"}, Category: CategoryConfiguration, Initiator: InitiatorAdmin},

	// Authentication Methods (combined security-info registration).
	{Name: "User registered security info", Action: "security-info-registered", Type: []string{"user", "creation"}, Initiator: InitiatorUser},
	{Name: "User deleted security info", Action: "security-info-deleted", Type: []string{"user", "deletion"}, Initiator: InitiatorUser},
	{Name: "User changed default security info", Action: "security-info-default-changed", Type: []string{"user", "change"}, Initiator: InitiatorUser},
	{Name: "User updated security info", Action: "security-info-updated", Type: []string{"user", "change"}, Initiator: InitiatorUser},
	{Name: "User reviewed security info", Action: "security-info-reviewed", Type: []string{"user", "info"}, Initiator: InitiatorUser},
	{Name: "User canceled security info registration", Action: "security-info-registration-canceled", Type: []string{"user", "info"}, Initiator: InitiatorUser},
	{Name: "User started security info registration", Action: "security-info-registration-started", Type: []string{"user", "info"}, Initiator: InitiatorUser},
	{Name: "User registered all required security info", Action: "security-info-registration-completed", Type: []string{"user", "creation"}, Initiator: InitiatorUser},
	{Name: "user started password reset", Action: "password-reset-started", Type: []string{"user", "info"}, Initiator: InitiatorUser},
	{Name: "User started password change", Action: "password-change-started", Type: []string{"user", "info"}, Initiator: InitiatorUser},
	{Name: "Admin registered security info", Action: "admin-security-info-registered", Type: []string{"user", "creation"}, Initiator: InitiatorAdmin},
	{Name: "Admin updated security info", Action: "admin-security-info-updated", Type: []string{"user", "change"}, Initiator: InitiatorAdmin},
	{Name: "Admin deleted security info", Action: "admin-security-info-deleted", Type: []string{"user", "deletion"}, Initiator: InitiatorAdmin},
	{Name: "Admin started password reset", Action: "password-reset-by-admin-started", Type: []string{"user", "info"}, Initiator: InitiatorAdmin},

	// Core Directory: the directory's own record of the password change,
	// whoever made it, so the record says who acted.
	{Name: "Reset user password", Action: "password-reset-by-admin", Type: []string{"user", "change"}},
	{Name: "Change user password", Action: "password-change", Type: []string{"user", "change"}},
	{Name: "Set force change user password", Action: "password-force-change", Type: []string{"user", "change"}},
}

// otherTypes is event.type for other activities of the SSPR service.
var otherTypes = []string{"user", "info"}

// expectedTypes are the event.type values ECS expects with each
// event.category a catalog entry may have (ecs_flat.yml,
// event.category allowed_values expected_event_types).
var expectedTypes = map[string][]string{
	CategoryIAM:           {"admin", "change", "creation", "deletion", "group", "info", "user"},
	CategoryConfiguration: {"access", "change", "creation", "deletion", "info"},
}

var initiators = []string{InitiatorUser, InitiatorAdmin, InitiatorApp}

var actionRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// Catalog maps activity names to actions and holds the byte-level prefilter
// derived from those names.
type Catalog struct {
	byName  map[string]Activity
	service string
	anchors [][]byte // folded substrings; a record can match only if it holds one
}

// NewCatalog returns the built-in catalog plus extra entries (an extra entry
// with a built-in name replaces it).
func NewCatalog(extra []Activity) (*Catalog, error) {
	c := &Catalog{byName: map[string]Activity{}, service: foldString(ServiceName)}
	for _, a := range Builtin {
		c.byName[foldString(a.Name)] = a
	}
	for i, a := range extra {
		if err := ValidateActivity(a); err != nil {
			return nil, fmt.Errorf("activity %d: %w", i, err)
		}
		a.Type = slices.Clone(a.Type)
		c.byName[foldString(a.Name)] = a
	}
	needles := []string{c.service}
	for k := range c.byName {
		needles = append(needles, k)
	}
	slices.Sort(needles) // deterministic anchor choice
	c.anchors = chooseAnchors(needles)
	return c, nil
}

// ValidateActivity checks one catalog entry.
func ValidateActivity(a Activity) error {
	if strings.TrimSpace(a.Name) == "" {
		return fmt.Errorf("name: must not be empty")
	}
	if !actionRE.MatchString(a.Action) {
		return fmt.Errorf("action: %q must be lowercase letters and digits joined by '-'", a.Action)
	}
	category := a.Category
	if category == "" {
		category = CategoryIAM
	}
	allowed, ok := expectedTypes[category]
	if !ok {
		return fmt.Errorf("category: %q must be %s or %s", a.Category, CategoryIAM, CategoryConfiguration)
	}
	if len(a.Type) == 0 {
		return fmt.Errorf("type: must list at least one event type")
	}
	for _, t := range a.Type {
		if !slices.Contains(allowed, t) {
			return fmt.Errorf("type: %q is not an ECS event type for category %s (%s)", t, category, strings.Join(allowed, ", "))
		}
	}
	if a.Initiator != "" && !slices.Contains(initiators, a.Initiator) {
		return fmt.Errorf("initiator: %q must be empty or one of %s", a.Initiator, strings.Join(initiators, ", "))
	}
	return nil
}

// Lookup returns the activity for an activityDisplayName and loggedByService,
// and whether the pair is an SSPR event.
func (c *Catalog) Lookup(name, service string) (Activity, bool) {
	key := foldString(name)
	if a, ok := c.byName[key]; ok {
		return a, true
	}
	if foldString(service) != c.service {
		return Activity{}, false
	}
	return Activity{Name: strings.TrimSpace(name), Action: Slug(name), Type: otherTypes}, true
}

// Slug makes an action from an activity name: lowercased, each run of
// characters other than ASCII letters and digits turned into '-', trimmed.
// Actions stay ASCII so they are stable keys for dashboards, Kafka headers
// and the JSON Schema's pattern whatever a name holds.
func Slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		} else {
			dash = true
		}
	}
	return b.String()
}

// foldString is the case folding used for matching: ASCII letters only, so
// the byte-level prefilter below folds exactly the same way; surrounding
// white space is ignored.
func foldString(s string) string {
	s = strings.TrimSpace(s)
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// foldByte maps every ASCII upper-case letter to its lower case. It also
// merges some non-letters (for example '@' and '`'); that can only make the
// prefilter pass more records, never fewer.
func foldByte(c byte) byte { return c | 0x20 }

// MayMatch reports whether raw could hold an SSPR event. false is a proof
// that it cannot: every catalog name and the service name contain one of
// the anchors, matching is ASCII case-insensitive, and a record with a \u
// escape (which could spell any letter) always passes. scratch is reused
// between calls to avoid allocation.
func (c *Catalog) MayMatch(raw []byte, scratch *[]byte) bool {
	if bytes.Contains(raw, []byte(`\u`)) {
		return true
	}
	buf := *scratch
	if cap(buf) < len(raw) {
		buf = make([]byte, len(raw), 2*len(raw))
	}
	buf = buf[:len(raw)]
	foldBytes(buf, raw)
	*scratch = buf
	for _, a := range c.anchors {
		if bytes.Contains(buf, a) {
			return true
		}
	}
	return false
}

// chooseAnchors picks a few substrings (folded, 4 to 8 bytes) such that
// every needle contains at least one: greedy by coverage, then by how rare
// the first byte is (bytes.Index skips ahead by the first byte), then by
// length (fewer false candidates).
func chooseAnchors(needles []string) [][]byte {
	const minLen, maxLen = 4, 8
	uncovered := map[string]bool{}
	for _, n := range needles {
		uncovered[n] = true
	}
	better := func(sub string, cnt int, best string, bestN int) bool {
		if cnt != bestN {
			return cnt > bestN
		}
		if rank(sub[0]) != rank(best[0]) {
			return rank(sub[0]) < rank(best[0])
		}
		if len(sub) != len(best) {
			return len(sub) > len(best)
		}
		return sub < best
	}
	var anchors [][]byte
	for len(uncovered) > 0 {
		best, bestN := "", 0
		for _, n := range needles {
			if !uncovered[n] {
				continue
			}
			for l := min(minLen, len(n)); l <= min(maxLen, len(n)); l++ {
				for i := 0; i+l <= len(n); i++ {
					sub := n[i : i+l]
					cnt := 0
					for u := range uncovered {
						if strings.Contains(u, sub) {
							cnt++
						}
					}
					if bestN == 0 || better(sub, cnt, best, bestN) {
						best, bestN = sub, cnt
					}
				}
			}
		}
		for u := range uncovered {
			if strings.Contains(u, best) {
				delete(uncovered, u)
			}
		}
		a := []byte(best)
		foldBytes(a, a)
		anchors = append(anchors, a)
	}
	return anchors
}
