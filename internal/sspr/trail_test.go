package sspr_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/testdata"
)

// trailDir holds the project's records for the password and security-info
// trail: one per catalog entry (catalog.json), one per flow result reason
// the catalog knows and the odd cases of steps and blocks
// (flow-steps.json), and admin resets with every writeback agent and each
// kind of initiator (admin-resets.json).
func trailDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(testdata.Project(t), "trail")
}

// trailExpect is what decoding each file of testdata/trail must give.
var trailExpect = map[string]fileExpect{
	"catalog.json":      {records: 29, sspr: 29},
	"flow-steps.json":   {records: 66, sspr: 66},
	"admin-resets.json": {records: 11, sspr: 11},
}

func TestTrailCorpus(t *testing.T) {
	checkCorpus(t, loadDir(t, "project/trail", trailDir(t)), trailExpect, "trailExpect")
}

func trailDocs(t *testing.T, base string) []ecs.Event {
	t.Helper()
	return shapeDocsIn(t, trailDir(t), base, int(trailExpect[base].sspr))
}

// shapeDocsIn decodes one file of dir; it must give n documents and no
// dead letter.
func shapeDocsIn(t *testing.T, dir, base string, n int) []ecs.Event {
	t.Helper()
	res := decode(t, input{name: base, data: readFile(t, filepath.Join(dir, base))})
	if len(res.DeadLetters) != 0 {
		t.Fatalf("%s: dead letter: %s", base, res.DeadLetters[0].Error)
	}
	if len(res.Docs) != n {
		t.Fatalf("%s: %d documents, want %d (counts %+v)", base, len(res.Docs), n, res.Counts)
	}
	return res.Docs
}

// catalogWant is the catalog as the contract states it: activity name,
// event.action, event.category, event.type and who acted in the record of
// catalog.json (an administrator for the admin activities, the user
// themself for the others).
var catalogWant = []struct {
	name, action, category string
	types                  []string
	initiator              string
}{
	{"Reset password (self-service)", "password-reset", "iam", []string{"user", "change"}, "user"},
	{"Self-service password reset flow activity progress", "password-reset-progress", "iam", []string{"user", "info"}, "user"},
	{"Self-serve password reset flow activity progress", "password-reset-progress", "iam", []string{"user", "info"}, "user"},
	{"Blocked from self-service password reset", "password-reset-blocked", "iam", []string{"user", "info"}, "user"},
	{"Unlock user account (self-service)", "account-unlock", "iam", []string{"user", "change"}, "user"},
	{"Change password (self-service)", "password-change", "iam", []string{"user", "change"}, "user"},
	{"Reset password (by admin)", "password-reset-by-admin", "iam", []string{"user", "change"}, "admin"},
	{"Security info saved for self-service password reset", "security-info-saved", "iam", []string{"user", "change"}, "user"},
	{"User registered for self-service password reset", "sspr-registered", "iam", []string{"user", "creation"}, "user"},
	{"Enable password writeback for directory", "password-writeback-enabled", "configuration", []string{"change"}, "admin"},
	{"Disable password writeback for directory", "password-writeback-disabled", "configuration", []string{"change"}, "admin"},
	{"Self-service password reset policy changes", "sspr-policy-changed", "configuration", []string{"change"}, "admin"},
	{"User registered security info", "security-info-registered", "iam", []string{"user", "creation"}, "user"},
	{"User deleted security info", "security-info-deleted", "iam", []string{"user", "deletion"}, "user"},
	{"User changed default security info", "security-info-default-changed", "iam", []string{"user", "change"}, "user"},
	{"User updated security info", "security-info-updated", "iam", []string{"user", "change"}, "user"},
	{"User reviewed security info", "security-info-reviewed", "iam", []string{"user", "info"}, "user"},
	{"User canceled security info registration", "security-info-registration-canceled", "iam", []string{"user", "info"}, "user"},
	{"User started security info registration", "security-info-registration-started", "iam", []string{"user", "info"}, "user"},
	{"User registered all required security info", "security-info-registration-completed", "iam", []string{"user", "creation"}, "user"},
	{"user started password reset", "password-reset-started", "iam", []string{"user", "info"}, "user"},
	{"User started password change", "password-change-started", "iam", []string{"user", "info"}, "user"},
	{"Admin registered security info", "admin-security-info-registered", "iam", []string{"user", "creation"}, "admin"},
	{"Admin updated security info", "admin-security-info-updated", "iam", []string{"user", "change"}, "admin"},
	{"Admin deleted security info", "admin-security-info-deleted", "iam", []string{"user", "deletion"}, "admin"},
	{"Admin started password reset", "password-reset-by-admin-started", "iam", []string{"user", "info"}, "admin"},
	{"Reset user password", "password-reset-by-admin", "iam", []string{"user", "change"}, "admin"},
	{"Change user password", "password-change", "iam", []string{"user", "change"}, "user"},
	{"Set force change user password", "password-force-change", "iam", []string{"user", "change"}, "admin"},
}

// TestCatalogEntries: every entry of the contract is in the built-in
// catalog, and its record in catalog.json becomes a document with the
// entry's action, category, types and initiator, the flow id, and (for
// the admin reset) the writeback agent.
func TestCatalogEntries(t *testing.T) {
	cat, err := sspr.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sspr.Builtin) != len(catalogWant) {
		t.Errorf("%d built-in entries, the contract lists %d", len(sspr.Builtin), len(catalogWant))
	}
	docs := trailDocs(t, "catalog.json")
	for i, w := range catalogWant {
		a, ok := cat.Lookup(strings.ToUpper(w.name), "Some other service")
		if !ok || a.Action != w.action {
			t.Errorf("Lookup(%q) = %q %v, want %q", w.name, a.Action, ok, w.action)
		}
		d := docs[i]
		where := fmt.Sprintf("catalog.json record %d (%s)", i+1, w.name)
		eq(t, where+" operation_name", d.Azure.AuditLogs.OperationName, w.name)
		eq(t, where+" event.action", d.Event.Action, w.action)
		eq(t, where+" event.category", d.Event.Category, []string{w.category})
		eq(t, where+" event.type", d.Event.Type, w.types)
		eq(t, where+" entra.sspr.initiator", d.Entra.SSPR.Initiator, w.initiator)
		eq(t, where+" entra.sspr.flow.id", d.Entra.SSPR.Flow.ID, d.Azure.CorrelationID)
		if d.Entra.SSPR.Flow.ID == "" {
			t.Errorf("%s: no flow id", where)
		}
	}
	byAction := map[string]ecs.Event{}
	for _, d := range docs {
		byAction[d.Event.Action] = d
	}
	eq(t, "admin reset writeback", byAction["password-reset-by-admin"].Entra.SSPR.Writeback, "")
	eq(t, "self-service admin reset writeback", docs[6].Entra.SSPR.Writeback, sspr.WritebackEntraConnect)
	blocked := byAction["password-reset-blocked"]
	eq(t, "blocked outcome (logged success)", blocked.Event.Outcome, "failure")
	eq(t, "blocked flag", blocked.Entra.SSPR.Blocked, true)
	eq(t, "blocked reason kept", blocked.Event.Reason, "User tried to verify a phone number too many times and is blocked for 24 hours")
	for _, d := range docs {
		if d.Event.Action != "password-reset-blocked" && d.Entra.SSPR.Blocked {
			t.Errorf("%s: blocked", d.Event.Action)
		}
	}
}

// TestBuiltinEntriesValid: every built-in entry passes the checks extra
// entries get, and names are unique.
func TestBuiltinEntriesValid(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range sspr.Builtin {
		if err := sspr.ValidateActivity(a); err != nil {
			t.Errorf("%s: %v", a.Name, err)
		}
		k := strings.ToLower(a.Name)
		if seen[k] {
			t.Errorf("%s: listed twice", a.Name)
		}
		seen[k] = true
	}
	for _, bad := range []sspr.Activity{
		{Name: "x", Action: "x", Type: []string{"user"}, Category: "configuration"},
		{Name: "x", Action: "x", Type: []string{"access"}},
		{Name: "x", Action: "x", Type: []string{"change"}, Category: "network"},
		{Name: "x", Action: "x", Type: []string{"change"}, Initiator: "system"},
	} {
		if sspr.ValidateActivity(bad) == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if err := sspr.ValidateActivity(sspr.Activity{Name: "x", Action: "x", Type: []string{"access", "info"}, Category: "configuration", Initiator: "app"}); err != nil {
		t.Errorf("valid configuration entry refused: %v", err)
	}
}

// TestFlowSteps: every result reason the catalog knows, as logged (with
// the remediation sentence of the failure reasons), gives its step and
// method; every step and method value is produced by some record.
func TestFlowSteps(t *testing.T) {
	docs := trailDocs(t, "flow-steps.json")
	table := sspr.ReasonTable()
	steps, methods := map[string]bool{}, map[string]bool{}
	for i, r := range table {
		d := docs[i]
		where := fmt.Sprintf("flow-steps.json record %d (%q)", i+1, r.Reason)
		if !strings.HasPrefix(d.Event.Reason, r.Reason) {
			t.Fatalf("%s: the record's reason is %q: the file and the table are out of step", where, d.Event.Reason)
		}
		eq(t, where+" step", d.Entra.SSPR.Step, r.Step)
		eq(t, where+" method", d.Entra.SSPR.Method, r.Method)
		eq(t, where+" action", d.Event.Action, "password-reset-progress")
		eq(t, where+" blocked", d.Entra.SSPR.Blocked, r.Step == sspr.StepBlocked)
		if r.Step == sspr.StepBlocked {
			eq(t, where+" outcome", d.Event.Outcome, "failure")
		}
		if sspr.UnknownReason(&d) {
			t.Errorf("%s: counted as unknown", where)
		}
		steps[d.Entra.SSPR.Step] = true
		methods[d.Entra.SSPR.Method] = true
	}
	for _, s := range sspr.Steps() {
		if !steps[s] {
			t.Errorf("step %q: no record gives it", s)
		}
	}
	for _, m := range sspr.Methods() {
		if !methods[m] {
			t.Errorf("method %q: no record gives it", m)
		}
	}

	rest := docs[len(table):]
	for i, c := range []struct {
		action, step, method, outcome string
		blocked, unknown              bool
	}{
		{"password-reset-progress", sspr.StepUserIDSubmitted, "", "success", false, false},               // case, period and spaces differ
		{"password-reset-progress", sspr.StepMethodStarted, sspr.MethodAppCode, "success", false, false}, // legacy activity name
		{"password-reset-progress", "", "", "success", false, true},                                      // a wording the catalog does not know
		{"password-reset-blocked", sspr.StepBlocked, "", "failure", true, false},                         // Microsoft logs blocks with result Success
		{"password-reset-blocked", "", "", "failure", true, false},                                       // a block without a reason
		{"password-reset-blocked", sspr.StepBlocked, sspr.MethodMobileCall, "failure", true, false},
	} {
		d := rest[i]
		where := fmt.Sprintf("flow-steps.json extra record %d (%q)", i+1, d.Event.Reason)
		eq(t, where+" action", d.Event.Action, c.action)
		eq(t, where+" step", d.Entra.SSPR.Step, c.step)
		eq(t, where+" method", d.Entra.SSPR.Method, c.method)
		eq(t, where+" outcome", d.Event.Outcome, c.outcome)
		eq(t, where+" blocked", d.Entra.SSPR.Blocked, c.blocked)
		eq(t, where+" unknown", sspr.UnknownReason(&d), c.unknown)
		if c.unknown && d.Event.Reason == "" {
			t.Errorf("%s: the unknown reason was not kept", where)
		}
	}
	// One flow per user: every record of a user's flow has its id.
	flows := map[string]string{}
	for _, d := range docs {
		if id, ok := flows[d.User.Target.ID]; ok && id != d.Entra.SSPR.Flow.ID {
			t.Errorf("%s: flow id %s, the user's flow is %s", d.Event.ID, d.Entra.SSPR.Flow.ID, id)
		}
		flows[d.User.Target.ID] = d.Entra.SSPR.Flow.ID
	}
	if len(flows) != 3 {
		t.Errorf("%d flows, want 3", len(flows))
	}
}

// TestAdminResets: the writeback agent of admin resets, and who acted.
func TestAdminResets(t *testing.T) {
	docs := trailDocs(t, "admin-resets.json")
	for i, want := range []string{
		sspr.WritebackNone,         // None
		sspr.WritebackEntraConnect, // Microsoft Entra Connect
		sspr.WritebackCloudSync,    // CloudSync
		sspr.WritebackEntraConnect, // Azure AD Connect: the agent's former name
		sspr.WritebackEntraConnect, // Azure Active Directory Connect
		sspr.WritebackCloudSync,    // Cloud Sync
		"",                         // a value not documented: no field, the detail kept
	} {
		d := docs[i]
		eq(t, fmt.Sprintf("record %d (%s) writeback", i+1, d.Azure.AuditLogs.AdditionalDetails["OnPremisesAgent"]), d.Entra.SSPR.Writeback, want)
		eq(t, fmt.Sprintf("record %d initiator", i+1), d.Entra.SSPR.Initiator, sspr.InitiatorAdmin)
	}
	eq(t, "undocumented agent kept", docs[6].Azure.AuditLogs.AdditionalDetails["OnPremisesAgent"], "SomethingElse")
	eq(t, "reset by an application", docs[7].Entra.SSPR.Initiator, sspr.InitiatorApp)
	eq(t, "directory reset of one's own password", docs[8].Entra.SSPR.Initiator, sspr.InitiatorUser)
	eq(t, "failed admin registration outcome", docs[9].Event.Outcome, "failure")
	eq(t, "failed admin registration initiator", docs[9].Entra.SSPR.Initiator, sspr.InitiatorAdmin)
	// Not in the catalog, logged by the SSPR service: the record tells who acted.
	eq(t, "unknown SSPR activity action", docs[10].Event.Action, "self-service-password-reset-method-chosen")
	eq(t, "unknown SSPR activity initiator", docs[10].Entra.SSPR.Initiator, sspr.InitiatorAdmin)
}

func TestStepMatching(t *testing.T) {
	for _, c := range []struct {
		reason, step, method string
		ok                   bool
	}{
		{"User submitted their user ID", sspr.StepUserIDSubmitted, "", true},
		{"  USER SUBMITTED THEIR USER ID.", sspr.StepUserIDSubmitted, "", true},
		{"User  completed the\temail verification option", sspr.StepMethodVerified, sspr.MethodEmail, true},
		{"User does not have a license. You can add a license to the user to resolve this", sspr.StepNoLicense, "", true},
		{"User does not have a license", sspr.StepNoLicense, "", true},
		{"User's account has insufficient authentication methods defined. Add authentication info to resolve this ", sspr.StepMethodsInsufficient, "", true},
		{"Password reset is not enabled for this user", sspr.StepNotEnabled, "", true},
		{"User submitted their user ID twice", "", "", false},
		{"User submitted", "", "", false},
		{"", "", "", false},
		{".", "", "", false},
		{"Successfully completed reset.", "", "", false},
	} {
		step, method, ok := sspr.Step(c.reason)
		if step != c.step || method != c.method || ok != c.ok {
			t.Errorf("Step(%q) = %q %q %v, want %q %q %v", c.reason, step, method, ok, c.step, c.method, c.ok)
		}
	}
}

// TestUnknownReasonOnlyForFlows: reasons of other activities are not
// steps, and a flow record without a reason is not unknown.
func TestUnknownReasonOnlyForFlows(t *testing.T) {
	for _, c := range []struct {
		action, reason, step string
		want                 bool
	}{
		{"password-reset-progress", "New wording", "", true},
		{"password-reset-blocked", "New wording", "", true},
		{"password-reset-progress", "", "", false},
		{"password-reset-progress", "User submitted their user ID", sspr.StepUserIDSubmitted, false},
		{"password-reset", "Successfully completed reset.", "", false},
		{"security-info-registered", "User registered Email", "", false},
	} {
		d := ecs.Event{Event: ecs.EventMeta{Action: c.action, Reason: c.reason}, Entra: ecs.Entra{SSPR: ecs.SSPR{Step: c.step}}}
		if got := sspr.UnknownReason(&d); got != c.want {
			t.Errorf("%s %q: %v, want %v", c.action, c.reason, got, c.want)
		}
	}
}

// TestCatalogAnchors: the prefilter passes every built-in name.
func TestCatalogAnchors(t *testing.T) {
	cat, err := sspr.NewCatalog(nil)
	if err != nil {
		t.Fatal(err)
	}
	var scratch []byte
	for _, a := range sspr.Builtin {
		rec := `{"category":"AuditLogs","properties":{"activityDisplayName":"` + a.Name + `","loggedByService":"x"}}`
		if !cat.MayMatch([]byte(rec), &scratch) {
			t.Errorf("prefilter rejects %q", a.Name)
		}
	}
	if !slices.ContainsFunc(sspr.Builtin, func(a sspr.Activity) bool { return a.Category == sspr.CategoryConfiguration }) {
		t.Error("no configuration entry")
	}
}

// TestStepNoAllocs: the reason of every flow record is looked up, so the
// lookup makes no garbage.
func TestStepNoAllocs(t *testing.T) {
	for _, r := range []string{"User submitted their user ID", "User does not have a license. You can add a license to the user to resolve this", "Some new wording"} {
		if n := testing.AllocsPerRun(50, func() { sspr.Step(r) }); n != 0 {
			t.Errorf("Step(%q): %v allocations, want 0", r, n)
		}
	}
}
