// Package health decides whether the exporter is alive and ready: every
// registered component reports ready and the pipeline is not stuck behind
// a backlog. It serves the answer as /healthz and /readyz handlers and as
// Prometheus gauges.
package health

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// PipelineComponent is the name under which the stall rule reports.
const PipelineComponent = "pipeline"

// Status is one component's state.
type Status struct {
	Name   string `json:"name"`
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
}

// Report is the state of every component; Ready only when all are.
type Report struct {
	Ready      bool     `json:"ready"`
	Components []Status `json:"components"`
}

// Checker holds the components whose readiness makes the exporter's.
// Methods are safe for concurrent use.
type Checker struct {
	stall  time.Duration
	now    func() time.Time
	redact func(string) string

	mu       sync.Mutex
	comps    []component
	progress func() time.Time
	lag      func() (int64, bool)
	lagSince time.Time // when a backlog was first seen, zero while none
}

type component struct {
	name  string
	ready func() error
}

// Option configures New.
type Option func(*Checker)

// withClock sets the clock of the stall rule (tests).
func withClock(now func() time.Time) Option { return func(c *Checker) { c.now = now } }

// WithRedactor sets how reasons are cleaned of secrets before they are
// served; the default removes the shapes secret.Redact knows. Pass the
// process's secret.Redactor's Redact (the log handler's) to also remove
// the configured secrets in every form they travel in.
func WithRedactor(f func(string) string) Option { return func(c *Checker) { c.redact = f } }

// New returns a checker whose stall rule fires when no progress was made
// for stallTimeout while a backlog waits; zero turns the rule off.
func New(stallTimeout time.Duration, opts ...Option) *Checker {
	c := &Checker{stall: stallTimeout, now: time.Now, redact: secret.Redact}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Add registers a component by name (e.g. "source.eventhubs",
// "sink.elasticsearch"); it is ready when r.Ready returns nil.
func (c *Checker) Add(name string, r stream.Readiness) { c.AddFunc(name, r.Ready) }

// AddFunc registers a readiness function under name; a second function
// under the same name replaces the first.
func (c *Checker) AddFunc(name string, ready func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.comps {
		if c.comps[i].name == name {
			c.comps[i].ready = ready
			return
		}
	}
	c.comps = append(c.comps, component{name: name, ready: ready})
}

// AddIfReadiness registers v when it implements stream.Readiness, and
// reports whether it did; components without Ready are taken as ready.
func (c *Checker) AddIfReadiness(name string, v any) bool {
	r, ok := v.(stream.Readiness)
	if ok {
		c.Add(name, r)
	}
	return ok
}

// WatchProgress enables the stall rule: lastProgress says when a batch was
// last acknowledged (zero: never), lag how many events wait (ok false when
// unknown, which never counts as stuck).
func (c *Checker) WatchProgress(lastProgress func() time.Time, lag func() (n int64, ok bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.progress, c.lag = lastProgress, lag
}

// Check asks every component and applies the stall rule.
func (c *Checker) Check() Report {
	c.mu.Lock()
	comps := append([]component(nil), c.comps...)
	progress, lag := c.progress, c.lag
	c.mu.Unlock()

	rep := Report{Ready: true, Components: make([]Status, 0, len(comps)+1)}
	for _, comp := range comps {
		st := Status{Name: comp.name, Ready: true}
		if err := comp.ready(); err != nil {
			st.Ready, st.Reason = false, c.redact(err.Error())
			rep.Ready = false
		}
		rep.Components = append(rep.Components, st)
	}
	if progress != nil && lag != nil {
		st := Status{Name: PipelineComponent, Ready: true}
		if reason := c.stalled(progress, lag); reason != "" {
			st.Ready, st.Reason = false, reason
			rep.Ready = false
		}
		rep.Components = append(rep.Components, st)
	}
	return rep
}

// stalled returns why the pipeline counts as stuck, or "". The clock of
// the rule starts at the later of the last progress and the moment the
// backlog was first seen, so that a backlog arriving after a quiet hour
// does not make the exporter unready before it had a chance to work.
func (c *Checker) stalled(progress func() time.Time, lag func() (int64, bool)) string {
	n, ok := lag()
	now := c.now()
	c.mu.Lock()
	if !ok || n <= 0 {
		c.lagSince = time.Time{}
		c.mu.Unlock()
		return ""
	}
	if c.lagSince.IsZero() {
		c.lagSince = now
	}
	since := c.lagSince
	c.mu.Unlock()
	if c.stall <= 0 {
		return ""
	}
	last := progress()
	ref := since
	if last.After(ref) {
		ref = last
	}
	idle := now.Sub(ref)
	if idle < c.stall {
		return ""
	}
	what := "no batch acknowledged"
	if !last.IsZero() {
		what = "no batch acknowledged since " + last.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("stalled: %s, %d events waiting for %s (ready_stall_timeout %s)",
		what, n, idle.Round(time.Second), c.stall)
}

// Healthz answers 200 while the process can serve HTTP at all: liveness
// must not depend on the outside world, or an outage would restart every
// replica for nothing.
func Healthz(w http.ResponseWriter, r *http.Request) {
	if !allowed(w, r) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

// Readyz answers 200 when every component is ready and 503 otherwise,
// naming each component with the reason it is not ready. Plain text, or
// JSON when the request accepts application/json.
func (c *Checker) Readyz(w http.ResponseWriter, r *http.Request) {
	if !allowed(w, r) {
		return
	}
	rep := c.Check()
	code := http.StatusOK
	if !rep.Ready {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(rep)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprint(w, rep.Text())
}

// Text renders the report as lines: "ready" or "not ready", then one line
// per component.
func (rep Report) Text() string {
	var b strings.Builder
	if rep.Ready {
		b.WriteString("ready\n")
	} else {
		b.WriteString("not ready\n")
	}
	for _, st := range rep.Components {
		if st.Ready {
			fmt.Fprintf(&b, "%s: ok\n", st.Name)
		} else {
			fmt.Fprintf(&b, "%s: not ready: %s\n", st.Name, oneLine(st.Reason))
		}
	}
	return b.String()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func allowed(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

var (
	descReady     = prometheus.NewDesc("sspr_exporter_ready", "1 when /readyz answers 200, 0 otherwise.", nil, nil)
	descCompReady = prometheus.NewDesc("sspr_exporter_component_ready", "1 when the component is ready, 0 otherwise; component pipeline is the stall rule.", []string{"component"}, nil)
)

// Describe implements prometheus.Collector.
func (c *Checker) Describe(ch chan<- *prometheus.Desc) {
	ch <- descReady
	ch <- descCompReady
}

// Collect implements prometheus.Collector: readiness at scrape time.
func (c *Checker) Collect(ch chan<- prometheus.Metric) {
	rep := c.Check()
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, b2f(rep.Ready))
	for _, st := range rep.Components {
		ch <- prometheus.MustNewConstMetric(descCompReady, prometheus.GaugeValue, b2f(st.Ready), st.Name)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
