package report

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
)

// Column is one column of a report: its name (the CSV header, the JSON
// key) and the most characters the table format shows of it; 0 leaves it
// out of the table, which fits a terminal of 160 columns.
type Column struct {
	Name  string
	Width int
}

// Row is one row of a report, with what the HTML charts count it under.
type Row struct {
	Cells   []string
	Day     string   // YYYY-MM-DD (UTC)
	Outcome string   // the row's outcome
	Methods []string // verification methods
	Count   int      // how many events or flows the row stands for
}

// definition is one report: which documents it reads and what it makes
// of them.
type definition struct {
	name, title string
	actions     []string
	columns     []Column
	// keep selects, among the documents of actions, those the report
	// shows; nil keeps all.
	keep func(*ecs.Event) bool
	// row makes a streamed report's row of one document.
	row func(*ecs.Event) Row
	// flows, instead of row, aggregates the documents by flow: the
	// outcome filter then applies to the flows' outcomes.
	flows func(fs []*flow, emit func(*Row) error) error
	// flowMethods: a row without a method of its own names the method
	// its flow's progress steps used, so the report also reads the steps.
	flowMethods bool
}

// Outcomes of a flow.
const (
	FlowReset     = "reset"
	FlowBlocked   = "blocked"
	FlowFailed    = "failed"
	FlowAbandoned = "abandoned"
)

var flowActions = []string{"password-reset", sspr.ActionProgress, sspr.ActionBlocked, "password-reset-started"}

var definitions = []definition{
	{
		name: "resets", title: "Self-service password resets",
		actions:     []string{"password-reset"},
		flowMethods: true,
		columns:     cols("time:20", "user:28", "domain:16", "source_ip:15", "location:16", "method:12", "outcome:7", "reason:24", "flow_id:0", "event_id:0"),
		row: func(e *ecs.Event) Row {
			return eventRow(e, stamp(e.Time), targetUser(e), eventstore.Domain(e), e.Source.IP, location(e), e.Entra.SSPR.Method,
				e.Event.Outcome, e.Event.Reason, flowID(e), e.Event.ID)
		},
	},
	{
		name: "failed-resets", title: "Failed and blocked self-service password resets",
		actions: []string{"password-reset", sspr.ActionProgress, sspr.ActionBlocked},
		columns: cols("time:20", "user:26", "domain:0", "source_ip:15", "location:0", "action:23", "step:18", "method:12", "blocked:7", "reason:20", "flow_id:0", "event_id:0"),
		keep:    func(e *ecs.Event) bool { return e.Event.Outcome == "failure" || blocked(e) },
		row: func(e *ecs.Event) Row {
			return eventRow(e, stamp(e.Time), targetUser(e), eventstore.Domain(e), e.Source.IP, location(e), e.Event.Action,
				e.Entra.SSPR.Step, e.Entra.SSPR.Method, yesNo(blocked(e)), e.Event.Reason, flowID(e), e.Event.ID)
		},
	},
	{
		name: "admin-resets", title: "Password resets by administrators",
		actions: []string{"password-reset-by-admin"},
		columns: cols("time:20", "admin:26", "initiator:9", "user:26", "domain:16", "outcome:7", "writeback:13", "source_ip:15", "reason:0", "event_id:0"),
		// A directory record of users resetting their own password is no
		// administrator's reset.
		keep: func(e *ecs.Event) bool { return e.Entra.SSPR.Initiator != sspr.InitiatorUser },
		row: func(e *ecs.Event) Row {
			return eventRow(e, stamp(e.Time), actor(e), e.Entra.SSPR.Initiator, targetUser(e), eventstore.Domain(e), e.Event.Outcome,
				e.Entra.SSPR.Writeback, e.Source.IP, e.Event.Reason, e.Event.ID)
		},
	},
	{
		name: "registrations", title: "Security info registrations and changes",
		actions: []string{
			"sspr-registered", "security-info-saved", "security-info-registered", "security-info-updated", "security-info-deleted",
			"security-info-default-changed", "security-info-registration-completed",
			"admin-security-info-registered", "admin-security-info-updated", "admin-security-info-deleted",
		},
		columns: cols("time:20", "user:26", "domain:0", "action:30", "method:16", "by:26", "initiator:9", "outcome:7", "details:0", "event_id:0"),
		row: func(e *ecs.Event) Row {
			m := registeredMethod(e)
			r := eventRow(e, stamp(e.Time), targetUser(e), eventstore.Domain(e), e.Event.Action, m, actor(e), e.Entra.SSPR.Initiator,
				e.Event.Outcome, e.Event.Reason, e.Event.ID)
			r.Methods = nonEmpty(m)
			return r
		},
	},
	{
		name: "flows", title: "Self-service password reset attempts",
		actions: flowActions,
		columns: cols("flow_id:36", "user:26", "domain:0", "first:20", "last:0", "duration:8", "events:6", "steps:0", "methods:20", "outcome:9", "source_ip:0"),
		flows: func(fs []*flow, emit func(*Row) error) error {
			for _, f := range fs {
				r := Row{
					Cells: []string{f.id, f.user, f.domain, stamp(f.first), stamp(f.last), f.last.Sub(f.first).Round(time.Second).String(),
						strconv.Itoa(f.events), strings.Join(f.steps, " > "), strings.Join(f.sortedMethods(), ","), f.outcome(), f.ip},
					Day: f.first.UTC().Format(time.DateOnly), Outcome: f.outcome(), Methods: f.sortedMethods(), Count: 1,
				}
				if err := emit(&r); err != nil {
					return err
				}
			}
			return nil
		},
	},
	{
		name: "summary", title: "Self-service password reset attempts per day",
		actions: flowActions,
		columns: cols("day:10", "domain:24", "outcome:9", "method:18", "attempts:8"),
		flows:   summarize,
	},
}

func lookup(name string) *definition {
	for i := range definitions {
		if definitions[i].name == name {
			return &definitions[i]
		}
	}
	return nil
}

// query is the store query of the report: the caller's filters with the
// report's actions; the outcome filter of a flow report applies to flows.
func (d *definition) query(q eventstore.Query) eventstore.Query {
	q.Actions = d.actions
	if d.flowMethods {
		// The steps are read whatever their outcome; the filter applies
		// to the rows.
		q.Actions = append(slices.Clone(d.actions), sspr.ActionProgress)
		q.Outcomes = nil
	}
	if d.flows != nil {
		q.Outcomes = nil
	}
	return q
}

// run scans the documents of q and emits the report's rows. A streamed
// report holds one document at a time; a flow report one entry per flow.
func (d *definition) run(ctx context.Context, r eventstore.Reader, q eventstore.Query, outcomes []string, emit func(*Row) error) error {
	if d.flowMethods {
		return d.runWithFlowMethods(ctx, r, q, outcomes, emit)
	}
	if d.flows == nil {
		return r.Scan(ctx, q, func(e *ecs.Event) error {
			if d.keep != nil && !d.keep(e) {
				return nil
			}
			row := d.row(e)
			return emit(&row)
		})
	}
	byID := map[string]*flow{}
	var order []*flow
	err := r.Scan(ctx, q, func(e *ecs.Event) error {
		id := flowID(e)
		f := byID[id]
		if f == nil {
			f = &flow{id: id, user: targetUser(e), domain: eventstore.Domain(e), first: e.Time, ip: e.Source.IP}
			byID[id] = f
			order = append(order, f)
		}
		f.add(e)
		return nil
	})
	if err != nil {
		return err
	}
	// Flows appear in the order of their first document, which is the
	// order of Scan: by time, then by event id.
	kept := order[:0]
	for _, f := range order {
		if flowOutcomeMatches(f.outcome(), outcomes) {
			kept = append(kept, f)
		}
	}
	return d.flows(kept, emit)
}

// flowOutcomeMatches applies an --outcome filter to a flow: success is a
// reset, failure any other end; a flow outcome may be named as well.
func flowOutcomeMatches(o string, want []string) bool {
	if len(want) == 0 {
		return true
	}
	for _, w := range want {
		if w == o || w == "success" && o == FlowReset || w == "failure" && o != FlowReset {
			return true
		}
	}
	return false
}

// flow is one reset attempt: the documents of one flow id.
type flow struct {
	id, user, domain, ip string
	first, last          time.Time
	events               int
	steps                []string
	methods              []string
	lastMethod           string
	reset, block, failed bool
}

func (f *flow) add(e *ecs.Event) {
	f.events++
	f.last = e.Time
	if f.user == "" {
		f.user = targetUser(e)
	}
	if f.domain == "" {
		f.domain = eventstore.Domain(e)
	}
	if f.ip == "" {
		f.ip = e.Source.IP
	}
	step := e.Entra.SSPR.Step
	if step == "" {
		step = e.Event.Action
	}
	if len(f.steps) == 0 || f.steps[len(f.steps)-1] != step {
		f.steps = append(f.steps, step)
	}
	if m := e.Entra.SSPR.Method; m != "" {
		f.lastMethod = m
		if !slices.Contains(f.methods, m) {
			f.methods = append(f.methods, m)
		}
	}
	switch {
	case e.Event.Outcome == "success" && (e.Event.Action == "password-reset" || step == sspr.StepPasswordReset):
		f.reset = true
	case blocked(e):
		f.block = true
	case e.Event.Outcome == "failure" && !slices.Contains(leftSteps, step):
		f.failed = true
	}
}

// leftSteps are the failures of a flow the user ended themself.
var leftSteps = []string{sspr.StepAbandoned, sspr.StepCanceled, sspr.StepAdminContacted}

// outcome is how the flow ended: reset if the password was reset, else
// blocked, failed, or abandoned when it just stopped.
func (f *flow) outcome() string {
	switch {
	case f.reset:
		return FlowReset
	case f.block:
		return FlowBlocked
	case f.failed:
		return FlowFailed
	}
	return FlowAbandoned
}

func (f *flow) sortedMethods() []string {
	m := slices.Clone(f.methods)
	slices.Sort(m)
	return m
}

// summarize counts the flows per day (of their first document), domain,
// outcome and the last method used.
func summarize(fs []*flow, emit func(*Row) error) error {
	type key struct{ day, domain, outcome, method string }
	counts := map[key]int{}
	for _, f := range fs {
		m := f.lastMethod
		if m == "" {
			m = "none"
		}
		counts[key{f.first.UTC().Format(time.DateOnly), f.domain, f.outcome(), m}]++
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return strings.Compare(a.day+"\x00"+a.domain+"\x00"+a.outcome+"\x00"+a.method, b.day+"\x00"+b.domain+"\x00"+b.outcome+"\x00"+b.method)
	})
	for _, k := range keys {
		n := counts[k]
		r := Row{Cells: []string{k.day, k.domain, k.outcome, k.method, strconv.Itoa(n)}, Day: k.day, Outcome: k.outcome, Count: n}
		if k.method != "none" {
			r.Methods = []string{k.method}
		}
		if err := emit(&r); err != nil {
			return err
		}
	}
	return nil
}

func cols(specs ...string) []Column {
	c := make([]Column, len(specs))
	for i, s := range specs {
		name, w, _ := strings.Cut(s, ":")
		c[i].Name = name
		c[i].Width, _ = strconv.Atoi(w)
	}
	return c
}

func eventRow(e *ecs.Event, cells ...string) Row {
	return Row{Cells: cells, Day: e.Time.UTC().Format(time.DateOnly), Outcome: e.Event.Outcome, Methods: nonEmpty(e.Entra.SSPR.Method), Count: 1}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// flowID is the flow a document belongs to: entra.sspr.flow.id, else the
// correlation id, else the document alone.
// runWithFlowMethods streams the report's rows, naming in a row without a
// method of its own the last method its flow's steps used. It holds one
// method per flow seen within the last hour: a flow's steps come minutes
// before its reset.
func (d *definition) runWithFlowMethods(ctx context.Context, r eventstore.Reader, q eventstore.Query, outcomes []string, emit func(*Row) error) error {
	type seen struct {
		method string
		at     time.Time
	}
	methods := map[string]seen{}
	steps := 0
	return r.Scan(ctx, q, func(e *ecs.Event) error {
		if !slices.Contains(d.actions, e.Event.Action) {
			if m := e.Entra.SSPR.Method; m != "" {
				methods[flowID(e)] = seen{m, e.Time}
			}
			if steps++; steps%10_000 == 0 {
				for id, s := range methods {
					if e.Time.Sub(s.at) > time.Hour {
						delete(methods, id)
					}
				}
			}
			return nil
		}
		if len(outcomes) > 0 && !slices.Contains(outcomes, e.Event.Outcome) || d.keep != nil && !d.keep(e) {
			return nil
		}
		if e.Entra.SSPR.Method == "" {
			if s, ok := methods[flowID(e)]; ok && e.Time.Sub(s.at) <= time.Hour {
				c := *e
				c.Entra.SSPR.Method = s.method
				e = &c
			}
		}
		row := d.row(e)
		return emit(&row)
	})
}

func flowID(e *ecs.Event) string {
	switch {
	case e.Entra.SSPR.Flow.ID != "":
		return e.Entra.SSPR.Flow.ID
	case e.Azure.CorrelationID != "":
		return e.Azure.CorrelationID
	}
	return e.Event.ID
}

// targetUser names the affected account: its UPN, else its id, else the
// initiating user.
func targetUser(e *ecs.Event) string {
	for _, s := range []string{e.User.Target.Name, e.User.Target.ID, e.User.Name, e.User.ID} {
		if s != "" {
			return s
		}
	}
	return ""
}

// actor names who acted: the initiating user, else the application.
func actor(e *ecs.Event) string {
	app := e.Azure.AuditLogs.InitiatedBy.App
	for _, s := range []string{e.User.Name, e.User.ID, app.DisplayName, app.ServicePrincipalName, app.AppID} {
		if s != "" {
			return s
		}
	}
	return ""
}

func blocked(e *ecs.Event) bool {
	return e.Entra.SSPR.Blocked || e.Event.Action == sspr.ActionBlocked || e.Entra.SSPR.Step == sspr.StepBlocked
}

func location(e *ecs.Event) string {
	g := e.Source.Geo
	var parts []string
	for _, s := range []string{g.CityName, g.RegionName, g.CountryISOCode} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// methodWords maps phrases of registration reasons to method names,
// most specific first.
var methodWords = []struct{ phrase, method string }{
	{"authenticator app", sspr.MethodAppNotification},
	{"security question", sspr.MethodSecurityQuestions},
	{"alternate phone", sspr.MethodMobileCall},
	{"office phone", sspr.MethodOfficePhone},
	{"mobile phone", sspr.MethodMobileSMS},
	{"phone", sspr.MethodMobileSMS},
	{"email", sspr.MethodEmail},
	{"fido", "fido2"},
	{"passkey", "fido2"},
	{"hello for business", "windows-hello"},
	{"temporary access pass", "temporary-access-pass"},
	{"software oath", sspr.MethodAppCode},
	{"hardware oath", "hardware-oath"},
}

// registeredMethod is the method a registration record is about: the
// document's own, else what its reason names.
func registeredMethod(e *ecs.Event) string {
	if e.Entra.SSPR.Method != "" {
		return e.Entra.SSPR.Method
	}
	r := strings.ToLower(e.Event.Reason)
	for _, w := range methodWords {
		if strings.Contains(r, w.phrase) {
			return w.method
		}
	}
	return ""
}
