// Package coverage is the backfill's account of continuity, per tenant:
// which hours of the range have audit records (any record read, SSPR or
// not, so that a quiet hour with only other traffic still shows the log
// was there), which have none (gaps), which are not known yet (their
// input not read), the first and last SSPR event, and what the records
// became.
package coverage

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/backfill/state"
)

// Input is what a report is computed from.
type Input struct {
	Command  string // graph or blob
	From, To time.Time
	// Units are the units of the range with their checkpoints.
	Units []state.Unit
	// Tenants are the tenants whose input was found, with or without data.
	Tenants []string
	// Planned is set when every unit of the range is among Units: an hour
	// no unit covers is then a gap, not an hour not looked at yet.
	Planned bool
}

// Report is the coverage of one backfill range.
type Report struct {
	Command string    `json:"command"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	// Complete is set when every unit of the range was read and
	// acknowledged: only then is every hour either with data or a gap.
	Complete  bool     `json:"complete"`
	Units     int      `json:"units"`
	UnitsDone int      `json:"units_done"`
	Tenants   []Tenant `json:"tenants"`
}

// Tenant is one tenant's coverage.
type Tenant struct {
	TenantID string `json:"tenant_id"`
	// Hours is the number of hours the range overlaps.
	Hours            int `json:"hours"`
	HoursWithData    int `json:"hours_with_data"`
	HoursWithoutData int `json:"hours_without_data"`
	// HoursPending are hours whose input has not been read (yet).
	HoursPending int   `json:"hours_pending"`
	Gaps         []Gap `json:"gaps"`
	// Pending lists the runs of pending hours.
	Pending []Gap `json:"pending,omitempty"`
	// FirstEvent and LastEvent are the earliest and latest @timestamp of
	// the SSPR documents delivered.
	FirstEvent    *time.Time `json:"first_event,omitempty"`
	LastEvent     *time.Time `json:"last_event,omitempty"`
	Records       int64      `json:"records"`
	SSPRDocuments int64      `json:"sspr_documents"`
	Dropped       int64      `json:"dropped"`
	Unsupported   int64      `json:"unsupported"`
	DeadLettered  int64      `json:"dead_lettered"`
}

// Gap is a run of consecutive hours [From, To).
type Gap struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Hours int       `json:"hours"`
}

// hourState is what is known of one hour of one tenant.
type hourState uint8

const (
	unknown  hourState = iota // no unit covers it (yet)
	empty                     // every unit covering it is done, none had records in it
	pending                   // a unit covering it is not done
	withData                  // records were delivered in it
)

// Compute builds the report.
func Compute(in Input) Report {
	rep := Report{Command: in.Command, From: in.From.UTC(), To: in.To.UTC(), Units: len(in.Units)}
	first := in.From.UTC().Truncate(time.Hour)
	n := 0
	for h := first; h.Before(in.To); h = h.Add(time.Hour) {
		n++
	}
	byTenant := map[string][]hourState{}
	totals := map[string]*state.Counts{}
	grid := func(t string) []hourState {
		g, ok := byTenant[t]
		if !ok {
			g = make([]hourState, n)
			byTenant[t] = g
			totals[t] = &state.Counts{}
		}
		return g
	}
	for _, t := range in.Tenants {
		grid(t)
	}
	for i := range in.Units {
		u := &in.Units[i]
		g := grid(u.Tenant)
		totals[u.Tenant].Add(u.Counts)
		if u.Done {
			rep.UnitsDone++
		}
		for h := u.From.UTC().Truncate(time.Hour); h.Before(u.To); h = h.Add(time.Hour) {
			k := int(h.Sub(first) / time.Hour)
			if k < 0 || k >= n {
				continue
			}
			switch {
			case u.Hours[h] > 0:
				g[k] = withData
			case g[k] == withData:
			case !u.Done:
				g[k] = pending
			case g[k] == unknown:
				g[k] = empty
			}
		}
		// Records in hours outside the unit's own interval (a Graph
		// record dated outside its slice) still mark their hour.
		for h, c := range u.Hours {
			if k := int(h.Sub(first) / time.Hour); c > 0 && k >= 0 && k < n && !h.Before(first) {
				g[k] = withData
			}
		}
	}
	tenants := make([]string, 0, len(byTenant))
	for t := range byTenant {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants)
	rep.Complete = in.Planned && rep.UnitsDone == rep.Units
	for _, t := range tenants {
		rep.Tenants = append(rep.Tenants, tenantReport(t, first, byTenant[t], totals[t], in.Planned))
	}
	return rep
}

func tenantReport(id string, first time.Time, g []hourState, c *state.Counts, planned bool) Tenant {
	tr := Tenant{
		TenantID: id, Hours: len(g), Gaps: []Gap{},
		Records: c.Records, SSPRDocuments: c.SSPR, Dropped: c.Dropped, Unsupported: c.Unsupported, DeadLettered: c.DeadLettered,
	}
	if !c.First.IsZero() {
		f, l := c.First.UTC(), c.Last.UTC()
		tr.FirstEvent, tr.LastEvent = &f, &l
	}
	for k, s := range g {
		if s == unknown {
			// No unit covers the hour: there is no input for it, once
			// every unit is known.
			if planned {
				g[k] = empty
			} else {
				g[k] = pending
			}
		}
	}
	for k, s := range g {
		switch s {
		case withData:
			tr.HoursWithData++
		case empty:
			tr.HoursWithoutData++
			tr.Gaps = extend(tr.Gaps, first, k)
		case pending:
			tr.HoursPending++
			tr.Pending = extend(tr.Pending, first, k)
		}
	}
	return tr
}

// extend adds hour k to the runs, joining it to the last one when adjacent.
func extend(runs []Gap, first time.Time, k int) []Gap {
	h := first.Add(time.Duration(k) * time.Hour)
	if n := len(runs); n > 0 && runs[n-1].To.Equal(h) {
		runs[n-1].To = h.Add(time.Hour)
		runs[n-1].Hours++
		return runs
	}
	return append(runs, Gap{From: h, To: h.Add(time.Hour), Hours: 1})
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// maxGapsShown bounds the gaps the text form lists per tenant.
const maxGapsShown = 10

// WriteText writes the report for people: one paragraph per tenant.
func (r Report) WriteText(w io.Writer) error {
	status := "complete"
	if !r.Complete {
		status = fmt.Sprintf("incomplete: %d of %d units done", r.UnitsDone, r.Units)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "coverage of backfill %s from %s to %s (%s)\n", r.Command, stamp(r.From), stamp(r.To), status)
	if len(r.Tenants) == 0 {
		b.WriteString("  no tenant found in the input\n")
	}
	for _, t := range r.Tenants {
		id := t.TenantID
		if id == "" {
			id = "(tenant unknown)"
		}
		fmt.Fprintf(&b, "  tenant %s: %d hours, %d with data, %d without", id, t.Hours, t.HoursWithData, t.HoursWithoutData)
		if t.HoursPending > 0 {
			fmt.Fprintf(&b, ", %d not read yet", t.HoursPending)
		}
		b.WriteString("\n")
		if t.FirstEvent != nil {
			fmt.Fprintf(&b, "    first event %s, last event %s\n", stamp(*t.FirstEvent), stamp(*t.LastEvent))
		} else {
			b.WriteString("    no SSPR event\n")
		}
		fmt.Fprintf(&b, "    %d records: %d SSPR documents, %d dropped (%d unsupported), %d dead-lettered\n", t.Records, t.SSPRDocuments, t.Dropped, t.Unsupported, t.DeadLettered)
		for i, g := range t.Gaps {
			if i == maxGapsShown {
				fmt.Fprintf(&b, "    ... %d more gaps (see --report)\n", len(t.Gaps)-maxGapsShown)
				break
			}
			fmt.Fprintf(&b, "    gap %s to %s (%d h)\n", stamp(g.From), stamp(g.To), g.Hours)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
