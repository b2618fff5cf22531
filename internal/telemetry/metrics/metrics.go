// Package metrics holds the exporter's Prometheus metrics in a registry of
// its own, the Recorder interface through which the pipeline and the sinks
// report what they did, and decorators that record without changing the
// components they wrap.
package metrics

import (
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Namespace prefixes every metric name.
const Namespace = "sspr_exporter"

// PartitionStats is one input partition as a source sees it.
type PartitionStats struct {
	Topic string // event hub or Kafka topic
	ID    string
	Owned bool // this instance reads it now
	// Lag is how many events wait behind the last processed one; negative
	// when unknown.
	Lag int64
	// LagStale is set when the source could not refresh Lag lately (its
	// broker or hub does not answer): Lag is then the last known value, a
	// lower bound of the backlog.
	LagStale bool
	// CheckpointAge is the time since the last checkpoint; zero when the
	// partition has none yet.
	CheckpointAge time.Duration
}

// Recorder is what the pipeline and the sinks call to report work. All
// methods are safe for concurrent use.
type Recorder interface {
	// BatchDone reports a batch whose ack was called: what its records
	// became, how long it took from read to ack, and the ack's error.
	BatchDone(c stream.Counts, dur time.Duration, err error)
	// DeadLetter reports one dead letter; reason is its deadletter.Reason
	// (see ReasonClass), never a raw error text.
	DeadLetter(stage, reason string)
	// SinkWrite reports one Write call of a sink with its document count.
	SinkWrite(sink string, docs int, dur time.Duration, err error)
	// Retry reports that a sink is about to retry a failed attempt.
	Retry(sink string)
}

// Nop is a Recorder that records nothing.
type Nop struct{}

// BatchDone does nothing.
func (Nop) BatchDone(stream.Counts, time.Duration, error) {}

// DeadLetter does nothing.
func (Nop) DeadLetter(string, string) {}

// SinkWrite does nothing.
func (Nop) SinkWrite(string, int, time.Duration, error) {}

// Retry does nothing.
func (Nop) Retry(string) {}

var (
	_ Recorder = Nop{}
	_ Recorder = (*Metrics)(nil)
)

// Buckets for latencies (seconds) and batch sizes. Sink writes include the
// sinks' own retries, so the latency buckets reach a minute.
var (
	latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	sizeBuckets    = []float64{0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}
)

// Metrics is the exporter's metrics and their registry.
type Metrics struct {
	reg *prometheus.Registry

	records      prometheus.Counter
	byAction     *prometheus.CounterVec
	byOutcome    *prometheus.CounterVec
	dropped      *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	batches      *prometheus.CounterVec
	batchBodies  prometheus.Histogram
	batchDocs    prometheus.Histogram
	batchDur     prometheus.Histogram
	inFlight     prometheus.Gauge
	sinkDur      *prometheus.HistogramVec
	sinkWrites   *prometheus.CounterVec
	sinkDocs     *prometheus.CounterVec
	sinkRetries  *prometheus.CounterVec
	sinkDups     *prometheus.CounterVec
	sinkReqs     *prometheus.CounterVec
	sinkHeld     *prometheus.GaugeVec
	sinkPast     *prometheus.CounterVec
	lastProgress prometheus.Gauge

	now       func() time.Time
	noRuntime bool
	// sourceWrapped is set once Source wrapped a source: batches are then
	// counted at their ack, not by BatchDone.
	sourceWrapped atomic.Bool

	mu       sync.Mutex
	progress time.Time
	sinks    []*sinkStatsFunc
	parts    map[string]func() []PartitionStats

	reportM reportMetrics // scheduled reports, see reports.go

	// syncMu serialises folding SinkStatsFrom totals into the counters, so
	// that concurrent scrapes do not add the same difference twice.
	syncMu sync.Mutex
}

// Option configures New.
type Option func(*Metrics)

// withClock sets the clock used for progress times (tests).
func withClock(now func() time.Time) Option { return func(m *Metrics) { m.now = now } }

// withoutRuntimeCollectors leaves out the Go and process collectors, whose
// values change on their own (tests comparing whole expositions).
func withoutRuntimeCollectors() Option { return func(m *Metrics) { m.noRuntime = true } }

// New returns the exporter's metrics in a new registry, with the Go and
// process collectors.
func New(opts ...Option) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), now: time.Now, parts: map[string]func() []PartitionStats{}}
	for _, o := range opts {
		o(m)
	}
	f := factory{m.reg}
	m.records = f.counter("records_total", "Entra records read, whatever became of them (SSPR, dropped or dead-lettered).")
	m.byAction = f.counterVec("documents_total", "SSPR documents emitted, by event.action.", "action")
	m.byOutcome = f.counterVec("documents_by_outcome_total", "SSPR documents emitted, by event.outcome (success, failure, unknown).", "outcome")
	m.dropped = f.counterVec("records_dropped_total", "Records dropped on purpose: not_sspr (not an SSPR activity) or unsupported (SSPR activity of a retired schema).", "reason")
	m.deadLetters = f.counterVec("dead_letters_total", "Dead letters written, by stage (decode, normalize, sink) and reason code (the dead letter's reason key).", "stage", "reason")
	m.batches = f.counterVec("batches_total", "Batches acknowledged, by result: ok (every document durable or dead-lettered) or error (not delivered, not checkpointed).", "result")
	m.batchBodies = f.histogram("batch_bodies", "Bodies (events, values) per batch read from the source.", sizeBuckets)
	m.batchDocs = f.histogram("batch_documents", "SSPR documents per batch.", sizeBuckets)
	m.batchDur = f.histogram("batch_duration_seconds", "Time from reading a batch to acknowledging it.", latencyBuckets)
	m.inFlight = f.gauge("batches_in_flight", "Batches read from the source and not yet acknowledged.")
	m.sinkDur = f.histogramVec("sink_write_duration_seconds", "Duration of sink Write calls, including the sink's own retries.", latencyBuckets, "sink")
	m.sinkWrites = f.counterVec("sink_writes_total", "Sink Write calls, by result: ok, rejected (some documents refused and dead-lettered, the rest durable) or error (nothing may be assumed stored).", "sink", "result")
	m.sinkDocs = f.counterVec("sink_documents_total", "Documents a sink reported durable.", "sink")
	m.sinkRetries = f.counterVec("sink_retries_total", "Attempts a sink retried after a failure (Elasticsearch: documents sent again).", "sink")
	m.sinkDups = f.counterVec("sink_duplicates_total", "Documents a sink found already stored (at-least-once delivery seen twice).", "sink")
	m.sinkReqs = f.counterVec("sink_requests_total", "Requests a sink sent, failed ones included.", "sink")
	m.sinkHeld = f.gaugeVec("sink_held_bytes", "Bytes of request bodies a sink holds in flight now.", "sink")
	m.sinkPast = f.counterVec("sink_past_retention_documents_total", "Documents a sink wrote into an index already older than its retention; ILM deletes them at its next run.", "sink")
	m.lastProgress = f.gauge("last_progress_timestamp_seconds", "Unix time at which a batch was last acknowledged without error; 0 before the first.")
	m.reg.MustRegister(&partitionCollector{m: m}, buildInfo())
	if !m.noRuntime {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry returns the registry holding every metric, to register more
// collectors in. Serve Gatherer, not Registry: it also brings totals from
// SinkStatsFrom up to date.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Gatherer returns what /metrics serves.
func (m *Metrics) Gatherer() prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		m.syncCounts()
		return m.reg.Gather()
	})
}

// LastProgress returns when a batch was last acknowledged without error, or
// the zero time.
func (m *Metrics) LastProgress() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.progress
}

// BatchRead records a batch handed out by the source; BatchAcked must
// follow once its ack is called.
func (m *Metrics) BatchRead(bodies int) {
	m.batchBodies.Observe(float64(bodies))
	m.inFlight.Inc()
}

// BatchAcked records the ack of a batch recorded by BatchRead.
func (m *Metrics) BatchAcked(dur time.Duration, err error) {
	m.inFlight.Dec()
	m.batchEnded(dur, err)
}

// batchEnded counts a finished batch and, when it succeeded, progress.
func (m *Metrics) batchEnded(dur time.Duration, err error) {
	m.batchDur.Observe(dur.Seconds())
	if err != nil {
		m.batches.WithLabelValues("error").Inc()
		return
	}
	m.batches.WithLabelValues("ok").Inc()
	now := m.now()
	m.mu.Lock()
	if now.After(m.progress) {
		m.progress = now
	}
	m.mu.Unlock()
	m.lastProgress.Set(float64(now.UnixNano()) / 1e9)
}

// BatchDone adds what a batch's records became. When the source is wrapped
// by the Source decorator, that already counts the batch, its duration and
// its result at the ack; otherwise BatchDone counts them from dur and err.
// c.DeadLettered is not added: the DeadLetters decorator counts each dead
// letter with its stage and reason.
func (m *Metrics) BatchDone(c stream.Counts, dur time.Duration, err error) {
	m.addCounts(c)
	m.batchDocs.Observe(float64(c.SSPR))
	if !m.sourceWrapped.Load() {
		m.batchEnded(dur, err)
	}
}

func (m *Metrics) addCounts(c stream.Counts) {
	if c.Records > 0 {
		m.records.Add(float64(c.Records))
	}
	if n := c.Dropped - c.Unsupported; n > 0 {
		m.dropped.WithLabelValues("not_sspr").Add(float64(n))
	}
	if c.Unsupported > 0 {
		m.dropped.WithLabelValues("unsupported").Add(float64(c.Unsupported))
	}
	for k, n := range c.ByAction {
		if n > 0 {
			m.byAction.WithLabelValues(k).Add(float64(n))
		}
	}
	for k, n := range c.ByOutcome {
		if n > 0 {
			m.byOutcome.WithLabelValues(k).Add(float64(n))
		}
	}
}

// DeadLetter counts one dead letter.
func (m *Metrics) DeadLetter(stage, reason string) {
	m.deadLetters.WithLabelValues(boundedStage(stage), boundedReason(reason)).Inc()
}

// SinkWrite records one Write call of a sink. A *stream.Rejected error
// counts as result "rejected" with the other documents durable.
func (m *Metrics) SinkWrite(sink string, docs int, dur time.Duration, err error) {
	m.sinkDur.WithLabelValues(sink).Observe(dur.Seconds())
	result, durable := "ok", docs
	if err != nil {
		if rej, ok := stream.AsRejected(err); ok {
			result, durable = "rejected", docs-len(rej.Docs)
		} else {
			result, durable = "error", 0
		}
	}
	m.sinkWrites.WithLabelValues(sink, result).Inc()
	if durable > 0 {
		m.sinkDocs.WithLabelValues(sink).Add(float64(durable))
	}
}

// Retry counts one retry of a sink.
func (m *Metrics) Retry(sink string) { m.sinkRetries.WithLabelValues(sink).Inc() }

// SinkStats are a sink's own running totals, for sinks that keep them.
type SinkStats struct {
	Retries    int64 // attempts retried since start
	Duplicates int64 // documents found already stored since start
	Requests   int64 // requests sent since start
	HeldBytes  int64 // bytes held by requests in flight now
	// PastRetention counts documents written into storage that its
	// lifecycle deletes at once (older than the retention), since start.
	PastRetention int64
}

type sinkStatsFunc struct {
	name string
	f    func() SinkStats
	seen SinkStats
}

// SinkStatsFrom takes a sink's retries, duplicates, requests and held
// bytes from f, read at every scrape. Retries then come from f; do not
// also call Retry for that sink.
func (m *Metrics) SinkStatsFrom(sink string, f func() SinkStats) {
	m.mu.Lock()
	m.sinks = append(m.sinks, &sinkStatsFunc{name: sink, f: f})
	m.mu.Unlock()
}

// syncCounts adds what SinkStatsFrom totals grew by since the last scrape.
func (m *Metrics) syncCounts() {
	m.mu.Lock()
	ss := append([]*sinkStatsFunc(nil), m.sinks...)
	m.mu.Unlock()
	if len(ss) == 0 {
		return
	}
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	for _, sf := range ss {
		cur := sf.f()
		addPositive(m.sinkRetries.WithLabelValues(sf.name), nonNeg(cur.Retries, sf.seen.Retries))
		addPositive(m.sinkDups.WithLabelValues(sf.name), nonNeg(cur.Duplicates, sf.seen.Duplicates))
		addPositive(m.sinkReqs.WithLabelValues(sf.name), nonNeg(cur.Requests, sf.seen.Requests))
		m.sinkHeld.WithLabelValues(sf.name).Set(float64(cur.HeldBytes))
		addPositive(m.sinkPast.WithLabelValues(sf.name), nonNeg(cur.PastRetention, sf.seen.PastRetention))
		sf.seen = cur
	}
}

func addPositive(c prometheus.Counter, n int64) {
	if n > 0 {
		c.Add(float64(n))
	}
}

// nonNeg returns cur − prev, never negative (totals only grow; a total
// that went down was restarted and is taken as new).
func nonNeg(cur, prev int64) int64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// WatchPartitions reports per-partition lag and checkpoint age of a source,
// read from f at every scrape.
func (m *Metrics) WatchPartitions(source string, f func() []PartitionStats) {
	m.mu.Lock()
	m.parts[source] = f
	m.mu.Unlock()
}

// TotalLag sums the known lag of the partitions this instance owns across
// watched sources; ok is false when no lag is known. A stale lag counts:
// it is a lower bound of the backlog.
func (m *Metrics) TotalLag() (lag int64, ok bool) {
	for _, s := range m.partitionSources() {
		for _, p := range s.f() {
			if p.Owned && p.Lag >= 0 {
				lag += p.Lag
				ok = true
			}
		}
	}
	return lag, ok
}

type namedPartitions struct {
	name string
	f    func() []PartitionStats
}

func (m *Metrics) partitionSources() []namedPartitions {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]namedPartitions, 0, len(m.parts))
	for n, f := range m.parts {
		out = append(out, namedPartitions{n, f})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

var (
	descPartLag     = desc("source_partition_lag", "Events enqueued in a partition after the last one processed; only partitions this instance owns and whose lag is known.", "source", "topic", "partition")
	descPartCkptAge = desc("source_checkpoint_age_seconds", "Seconds since this instance last checkpointed the partition; absent before the first. Grows on idle partitions too: alert on it together with lag.", "source", "topic", "partition")
	descPartOwned   = desc("source_partition_owned", "1 when this instance reads the partition now, 0 when it knows the partition but does not own it.", "source", "topic", "partition")
	descPartStale   = desc("source_partition_lag_stale", "1 when the source could not refresh the partition's lag lately (the hub or broker does not answer): source_partition_lag then holds the last known value, a lower bound of the backlog. Only partitions this instance owns, or could not read lately (the client may have given them up while the service does not answer).", "source", "topic", "partition")
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

// partitionCollector reads source stats at scrape time, so they are never
// stale and need no polling loop.
type partitionCollector struct{ m *Metrics }

func (c *partitionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPartLag
	ch <- descPartCkptAge
	ch <- descPartOwned
	ch <- descPartStale
}

func (c *partitionCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.m.partitionSources() {
		for _, p := range s.f() {
			ch <- prometheus.MustNewConstMetric(descPartOwned, prometheus.GaugeValue, gaugeBool(p.Owned), s.name, p.Topic, p.ID)
			if p.Owned || p.LagStale {
				ch <- prometheus.MustNewConstMetric(descPartStale, prometheus.GaugeValue, gaugeBool(p.LagStale), s.name, p.Topic, p.ID)
			}
			if !p.Owned {
				continue
			}
			if p.Lag >= 0 {
				ch <- prometheus.MustNewConstMetric(descPartLag, prometheus.GaugeValue, float64(p.Lag), s.name, p.Topic, p.ID)
			}
			if p.CheckpointAge > 0 {
				ch <- prometheus.MustNewConstMetric(descPartCkptAge, prometheus.GaugeValue, p.CheckpointAge.Seconds(), s.name, p.Topic, p.ID)
			}
		}
	}
}

// gaugeBool is 1 for true and 0 for false.
func gaugeBool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func buildInfo() prometheus.Collector {
	version, goversion := "unknown", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			version = strings.TrimPrefix(v, "v")
		}
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info", Help: "Build of the running exporter; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": goversion},
	}, func() float64 { return 1 })
}

// factory creates metrics registered in one registry.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}
