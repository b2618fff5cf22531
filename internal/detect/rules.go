package detect

import (
	"errors"
	"fmt"

	"github.com/sspr-exporter/sspr-exporter/internal/detect/settings"
)

// Rule ids.
const (
	IDFailedAttempts        = settings.IDFailedAttempts
	IDSprayIP               = settings.IDSprayIP
	IDNewCountry            = settings.IDNewCountry
	IDNewASN                = settings.IDNewASN
	IDSurgeDomain           = settings.IDSurgeDomain
	IDSurgeGroup            = settings.IDSurgeGroup
	IDResetThenSecInfo      = settings.IDResetThenSecInfo
	IDAdminSecInfoThenReset = settings.IDAdminSecInfoThenReset
	IDAdminMassReset        = settings.IDAdminMassReset
	IDPrivilegedReset       = settings.IDPrivilegedReset
)

// Config is every rule's switch and thresholds.
type Config = settings.Config

// The settings of each kind of rule.
type (
	WindowRule     = settings.WindowRule
	HistoryRule    = settings.HistoryRule
	SurgeRule      = settings.SurgeRule
	SequenceRule   = settings.SequenceRule
	PrivilegedRule = settings.PrivilegedRule
)

// DefaultConfig enables every rule with the thresholds of the rule table.
func DefaultConfig() Config { return settings.Default() }

const day = settings.Day

// invalid joins the problems of a config into one error.
func invalid(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("detect config: %w", errors.Join(errs...))
}

// Severities, as event.severity and event.risk_score.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// SeverityScore is the number a severity is stored as.
func SeverityScore(s string) int {
	return map[string]int{SeverityLow: 21, SeverityMedium: 47, SeverityHigh: 73, SeverityCritical: 99}[s]
}

// Ruleset is rule.ruleset of every alert.
const Ruleset = "sspr-exporter"

// RuleVersion is rule.version: bumped when a rule's meaning changes.
const RuleVersion = "1"

// Reference is where the rules are documented, for rule.reference.
const Reference = "https://github.com/sspr-exporter/sspr-exporter/blob/main/docs/detection.md#"

// ATT&CK is one MITRE ATT&CK tactic or technique.
type ATTACK struct {
	ID, Name string
}

// Reference is the technique's or tactic's page on the ATT&CK site.
func (a ATTACK) Reference() string {
	if len(a.ID) > 2 && a.ID[:2] == "TA" {
		return "https://attack.mitre.org/tactics/" + a.ID + "/"
	}
	id := a.ID
	for i := range len(id) {
		if id[i] == '.' {
			id = id[:i] + "/" + id[i+1:]
		}
	}
	return "https://attack.mitre.org/techniques/" + id + "/"
}

// RuleInfo describes one rule.
type RuleInfo struct {
	ID, Name, Description string
	Severity              string // low, medium, high, critical
	Version               string
	Tactic                ATTACK
	Technique             ATTACK // T1110
	Subtechnique          ATTACK // T1110.003, or zero
	// Needs names the enrichment a rule depends on: "geoip", "graph", or empty.
	Needs string
}

var (
	credentialAccess = ATTACK{"TA0006", "Credential Access"}
	initialAccess    = ATTACK{"TA0001", "Initial Access"}
	persistence      = ATTACK{"TA0003", "Persistence"}
	privEscalation   = ATTACK{"TA0004", "Privilege Escalation"}
	bruteForce       = ATTACK{"T1110", "Brute Force"}
	validAccounts    = ATTACK{"T1078", "Valid Accounts"}
	accountManip     = ATTACK{"T1098", "Account Manipulation"}
	modifyAuth       = ATTACK{"T1556", "Modify Authentication Process"}
)

// catalog lists every rule in a fixed order.
var catalog = []RuleInfo{
	{ID: IDFailedAttempts, Name: "Repeated failed or blocked self-service resets",
		Description: "Many failed or blocked password reset or account unlock attempts for one user within a window.",
		Severity:    SeverityMedium, Tactic: credentialAccess, Technique: bruteForce},
	{ID: IDSprayIP, Name: "Failed resets from one IP across many users",
		Description: "One source address with failed or blocked resets for many distinct users within a window.",
		Severity:    SeverityHigh, Tactic: credentialAccess, Technique: bruteForce, Subtechnique: ATTACK{"T1110.003", "Password Spraying"}},
	{ID: IDNewCountry, Name: "Reset from a country new for the user",
		Description: "A successful password reset from a country none of the user's own earlier events in the history (outside the reset's flow) came from.",
		Severity:    SeverityMedium, Tactic: initialAccess, Technique: validAccounts, Needs: "geoip"},
	{ID: IDNewASN, Name: "Reset from a network (ASN) new for the user",
		Description: "A successful password reset from an autonomous system none of the user's own earlier events in the history (outside the reset's flow) came from.",
		Severity:    SeverityLow, Tactic: initialAccess, Technique: validAccounts, Needs: "geoip"},
	{ID: IDSurgeDomain, Name: "Surge of resets in a domain",
		Description: "Far more successful resets in a domain in an hour or a day than its baseline.",
		Severity:    SeverityMedium, Tactic: persistence, Technique: accountManip},
	{ID: IDSurgeGroup, Name: "Surge of resets in a group",
		Description: "Far more successful resets of a group's members in an hour or a day than its baseline.",
		Severity:    SeverityMedium, Tactic: persistence, Technique: accountManip, Needs: "graph"},
	{ID: IDResetThenSecInfo, Name: "Security info changed right after a reset from another place",
		Description: "A successful reset followed shortly by a security-info change of the same user from another address or country.",
		Severity:    SeverityHigh, Tactic: persistence, Technique: modifyAuth, Subtechnique: ATTACK{"T1556.006", "Multi-Factor Authentication"}},
	{ID: IDAdminSecInfoThenReset, Name: "Admin registered security info shortly before a reset",
		Description: "An administrator registered or updated a user's security info, and the user's password was reset shortly after.",
		Severity:    SeverityHigh, Tactic: persistence, Technique: accountManip},
	{ID: IDAdminMassReset, Name: "One admin resetting many users",
		Description: "One administrator reset the passwords of many distinct users within a window.",
		Severity:    SeverityHigh, Tactic: persistence, Technique: accountManip},
	{ID: IDPrivilegedReset, Name: "Reset of a privileged account",
		Description: "A successful self-service or admin reset of an account holding a privileged directory role.",
		Severity:    SeverityHigh, Tactic: privEscalation, Technique: validAccounts, Subtechnique: ATTACK{"T1078.004", "Cloud Accounts"}, Needs: "graph"},
}

func init() {
	for i := range catalog {
		catalog[i].Version = RuleVersion
	}
}

// Catalog returns every rule the engine knows, enabled or not.
func Catalog() []RuleInfo { return append([]RuleInfo(nil), catalog...) }

func info(id string) RuleInfo {
	for _, r := range catalog {
		if r.ID == id {
			return r
		}
	}
	panic("detect: unknown rule " + id)
}
