package metrics

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/streamtest"
)

func compare(t *testing.T, m *Metrics, want string, names ...string) {
	t.Helper()
	for i := range names {
		names[i] = Namespace + "_" + names[i]
	}
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
}

func TestBatchDoneCounts(t *testing.T) {
	m := New(withoutRuntimeCollectors())
	m.BatchDone(stream.Counts{
		Records: 10, SSPR: 4, Dropped: 6, Unsupported: 1,
		ByAction:  map[string]int64{"password-reset": 3, "password-reset-registration": 1},
		ByOutcome: map[string]int64{"success": 3, "failure": 1},
	}, time.Second, nil)
	m.BatchDone(stream.Counts{Records: 2, SSPR: 1, ByAction: map[string]int64{"password-reset": 1}, ByOutcome: map[string]int64{"failure": 1}}, time.Second, nil)

	compare(t, m, `
# HELP sspr_exporter_records_total Entra records read, whatever became of them (SSPR, dropped or dead-lettered).
# TYPE sspr_exporter_records_total counter
sspr_exporter_records_total 12
# HELP sspr_exporter_documents_total SSPR documents emitted, by event.action.
# TYPE sspr_exporter_documents_total counter
sspr_exporter_documents_total{action="password-reset"} 4
sspr_exporter_documents_total{action="password-reset-registration"} 1
# HELP sspr_exporter_documents_by_outcome_total SSPR documents emitted, by event.outcome (success, failure, unknown).
# TYPE sspr_exporter_documents_by_outcome_total counter
sspr_exporter_documents_by_outcome_total{outcome="failure"} 2
sspr_exporter_documents_by_outcome_total{outcome="success"} 3
# HELP sspr_exporter_records_dropped_total Records dropped on purpose: not_sspr (not an SSPR activity) or unsupported (SSPR activity of a retired schema).
# TYPE sspr_exporter_records_dropped_total counter
sspr_exporter_records_dropped_total{reason="not_sspr"} 5
sspr_exporter_records_dropped_total{reason="unsupported"} 1
`, "records_total", "documents_total", "documents_by_outcome_total", "records_dropped_total")

	// batch_documents: observations 4 and 1.
	h := histogramOf(t, m, "sspr_exporter_batch_documents")
	if h.count != 2 || h.sum != 5 {
		t.Fatalf("batch_documents count %d sum %v, want 2 and 5", h.count, h.sum)
	}
}

func TestDeadLetterReasons(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pos := stream.Position{Kind: "file", File: "x", Line: 1}
	dl := func(stage string, reason deadletter.Reason, msg string) deadletter.Record {
		return deadletter.New(at, stage, reason, pos, errors.New(msg), nil)
	}
	// The label is the reason code whatever the error text says.
	cases := []struct {
		rec  deadletter.Record
		want string
	}{
		{dl(deadletter.StageDecode, deadletter.ReasonInvalidJSON, "invalid JSON at line 1"), "invalid_json"},
		{dl(deadletter.StageDecode, deadletter.ReasonBadEnvelope, "invalid JSON, or so it says"), "bad_envelope"},
		{dl(deadletter.StageDecode, deadletter.ReasonNotObject, "record is not a JSON object"), "not_object"},
		{dl(deadletter.StageDecode, deadletter.ReasonTooLarge, "value larger than max_body_bytes"), "too_large"},
		{dl(deadletter.StageDecode, deadletter.ReasonEmpty, "message holds no records"), "empty"},
		{dl(deadletter.StageNormalize, deadletter.ReasonNoTime, "no parseable activityDateTime or time"), "no_time"},
		{dl(deadletter.StageNormalize, deadletter.ReasonNormalize, "no activity name"), "normalize"},
		{dl(deadletter.StageDecode, deadletter.ReasonUnsupportedVersion, "dead letter format version 2"), "unsupported_version"},
		{dl(deadletter.StageDecode, deadletter.ReasonInvalidDocument, "re-driven document"), "invalid_document"},
		{dl(deadletter.StageSink, deadletter.ReasonSinkRejected, "mapper_parsing_exception: failed to parse field [user.name]"), "sink_rejected"},
		{dl(deadletter.StageDecode, "", "re-drive: dead letter holds a truncated payload"), "other"},
		{dl(deadletter.StageDecode, "something new", "x"), "other"},
	}
	for _, c := range cases {
		if got := ReasonClass(c.rec); got != c.want {
			t.Errorf("ReasonClass(%s %q %q) = %q, want %q", c.rec.Stage, c.rec.Reason, c.rec.Error, got, c.want)
		}
	}

	m := New(withoutRuntimeCollectors())
	var store recordingWriter
	w := DeadLetters(&store, m)
	ctx := context.Background()
	for _, c := range cases {
		if err := w.Write(ctx, c.rec); err != nil {
			t.Fatal(err)
		}
	}
	// A record the writer fails to store is not counted.
	store.fail = errors.New("disk full")
	if err := w.Write(ctx, cases[0].rec); err == nil {
		t.Fatal("write error not returned")
	}
	if len(store.got) != len(cases) {
		t.Fatalf("stored %d records, want %d", len(store.got), len(cases))
	}
	// Labels outside the known sets are folded, not passed through.
	m.DeadLetter("weird", "some raw error text")

	compare(t, m, `
# HELP sspr_exporter_dead_letters_total Dead letters written, by stage (decode, normalize, sink) and reason code (the dead letter's reason key).
# TYPE sspr_exporter_dead_letters_total counter
sspr_exporter_dead_letters_total{reason="bad_envelope",stage="decode"} 1
sspr_exporter_dead_letters_total{reason="empty",stage="decode"} 1
sspr_exporter_dead_letters_total{reason="invalid_document",stage="decode"} 1
sspr_exporter_dead_letters_total{reason="invalid_json",stage="decode"} 1
sspr_exporter_dead_letters_total{reason="not_object",stage="decode"} 1
sspr_exporter_dead_letters_total{reason="other",stage="decode"} 2
sspr_exporter_dead_letters_total{reason="too_large",stage="decode"} 1
sspr_exporter_dead_letters_total{reason="unsupported_version",stage="decode"} 1
sspr_exporter_dead_letters_total{reason="no_time",stage="normalize"} 1
sspr_exporter_dead_letters_total{reason="normalize",stage="normalize"} 1
sspr_exporter_dead_letters_total{reason="other",stage="other"} 1
sspr_exporter_dead_letters_total{reason="sink_rejected",stage="sink"} 1
`, "dead_letters_total")
}

type recordingWriter struct {
	got  []deadletter.Record
	fail error
}

func (w *recordingWriter) Write(_ context.Context, r deadletter.Record) error {
	if w.fail != nil {
		return w.fail
	}
	w.got = append(w.got, r)
	return nil
}

func TestSinkDecorator(t *testing.T) {
	m := New(withoutRuntimeCollectors())
	rej := &stream.Rejected{Sink: "elasticsearch", Docs: []stream.Rejection{{Index: 1, Err: errors.New("mapping")}}}
	fs := &streamtest.Sink{Answers: []error{nil, rej, errors.New("connection refused")}}
	fs.SetReady(errors.New("cluster red"))
	s := Sink("elasticsearch", fs, m)
	docs := make([]ecs.Event, 5)
	if err := s.Write(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	err := s.Write(context.Background(), docs)
	if r, ok := stream.AsRejected(err); !ok || r != rej {
		t.Fatalf("rejection not passed through unchanged: %v", err)
	}
	if err := s.Write(context.Background(), docs); err == nil {
		t.Fatal("error swallowed")
	}
	m.Retry("elasticsearch")
	m.Retry("elasticsearch")
	m.Retry("kafka")
	r, ok := s.(stream.Readiness)
	if !ok || r.Ready() == nil || r.Ready().Error() != "cluster red" {
		t.Fatalf("Ready not forwarded: %v", ok)
	}

	compare(t, m, `
# HELP sspr_exporter_sink_writes_total Sink Write calls, by result: ok, rejected (some documents refused and dead-lettered, the rest durable) or error (nothing may be assumed stored).
# TYPE sspr_exporter_sink_writes_total counter
sspr_exporter_sink_writes_total{result="error",sink="elasticsearch"} 1
sspr_exporter_sink_writes_total{result="ok",sink="elasticsearch"} 1
sspr_exporter_sink_writes_total{result="rejected",sink="elasticsearch"} 1
# HELP sspr_exporter_sink_documents_total Documents a sink reported durable.
# TYPE sspr_exporter_sink_documents_total counter
sspr_exporter_sink_documents_total{sink="elasticsearch"} 9
# HELP sspr_exporter_sink_retries_total Attempts a sink retried after a failure (Elasticsearch: documents sent again).
# TYPE sspr_exporter_sink_retries_total counter
sspr_exporter_sink_retries_total{sink="elasticsearch"} 2
sspr_exporter_sink_retries_total{sink="kafka"} 1
`, "sink_writes_total", "sink_documents_total", "sink_retries_total")
	if h := histogramOf(t, m, "sspr_exporter_sink_write_duration_seconds"); h.count != 3 {
		t.Fatalf("sink_write_duration_seconds count %d, want 3", h.count)
	}

	// A sink without Ready stays without it.
	plain := Sink("file", struct{ stream.Sink }{fs}, m)
	if _, ok := plain.(stream.Readiness); ok {
		t.Fatal("decorator invented a Ready method")
	}
}

// emptyBatches returns a source of n batches of size empty bodies each.
func emptyBatches(n, size int) *streamtest.Source {
	batches := make([][]stream.Body, n)
	for i := range batches {
		batches[i] = make([]stream.Body, size)
	}
	return streamtest.NewSource(batches...)
}

func TestSourceDecorator(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	m := New(withoutRuntimeCollectors(), withClock(func() time.Time { return now }))
	fs := emptyBatches(3, 3)
	src := m.Source(fs)
	ctx := context.Background()

	b1, _ := src.Read(ctx)
	b2, _ := src.Read(ctx)
	compare(t, m, `
# HELP sspr_exporter_batches_in_flight Batches read from the source and not yet acknowledged.
# TYPE sspr_exporter_batches_in_flight gauge
sspr_exporter_batches_in_flight 2
`, "batches_in_flight")
	if !m.LastProgress().IsZero() {
		t.Fatal("progress before any ack")
	}
	if err := b1.Ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if !m.LastProgress().Equal(now) {
		t.Fatalf("LastProgress = %v, want %v", m.LastProgress(), now)
	}
	now = now.Add(time.Minute)
	deliveryErr := errors.New("sink kafka: down")
	if err := b2.Ack(ctx, deliveryErr); err != nil {
		t.Fatal(err)
	}
	if !m.LastProgress().Equal(now.Add(-time.Minute)) {
		t.Fatal("a failed batch counted as progress")
	}
	// The checkpoint itself failing is no progress either, and its error
	// reaches the pipeline.
	fs.SetAckError(errors.New("checkpoint store unreachable"))
	b3, _ := src.Read(ctx)
	if err := b3.Ack(ctx, nil); err == nil || err.Error() != "checkpoint store unreachable" {
		t.Fatalf("ack error = %v", err)
	}
	if acks := fs.Acks(); len(acks) != 3 || acks[1] != deliveryErr {
		t.Fatalf("underlying acks: %v", acks)
	}
	compare(t, m, `
# HELP sspr_exporter_batches_in_flight Batches read from the source and not yet acknowledged.
# TYPE sspr_exporter_batches_in_flight gauge
sspr_exporter_batches_in_flight 0
# HELP sspr_exporter_batches_total Batches acknowledged, by result: ok (every document durable or dead-lettered) or error (not delivered, not checkpointed).
# TYPE sspr_exporter_batches_total counter
sspr_exporter_batches_total{result="error"} 2
sspr_exporter_batches_total{result="ok"} 1
# HELP sspr_exporter_last_progress_timestamp_seconds Unix time at which a batch was last acknowledged without error; 0 before the first.
# TYPE sspr_exporter_last_progress_timestamp_seconds gauge
sspr_exporter_last_progress_timestamp_seconds 1.7e+09
`, "batches_in_flight", "batches_total", "last_progress_timestamp_seconds")
	if h := histogramOf(t, m, "sspr_exporter_batch_bodies"); h.count != 3 || h.sum != 9 {
		t.Fatalf("batch_bodies count %d sum %v, want 3 and 9", h.count, h.sum)
	}
}

func TestPartitions(t *testing.T) {
	m := New(withoutRuntimeCollectors())
	m.WatchPartitions("eventhubs", func() []PartitionStats {
		return []PartitionStats{
			{Topic: "audit", ID: "0", Owned: true, Lag: 12, CheckpointAge: 90 * time.Second},
			{Topic: "audit", ID: "1", Owned: true, Lag: -1},
			{Topic: "audit", ID: "2", Owned: false, Lag: 500, CheckpointAge: time.Hour},
		}
	})
	compare(t, m, `
# HELP sspr_exporter_source_partition_lag Events enqueued in a partition after the last one processed; only partitions this instance owns and whose lag is known.
# TYPE sspr_exporter_source_partition_lag gauge
sspr_exporter_source_partition_lag{partition="0",source="eventhubs",topic="audit"} 12
# HELP sspr_exporter_source_checkpoint_age_seconds Seconds since this instance last checkpointed the partition; absent before the first. Grows on idle partitions too: alert on it together with lag.
# TYPE sspr_exporter_source_checkpoint_age_seconds gauge
sspr_exporter_source_checkpoint_age_seconds{partition="0",source="eventhubs",topic="audit"} 90
# HELP sspr_exporter_source_partition_owned 1 when this instance reads the partition now, 0 when it knows the partition but does not own it.
# TYPE sspr_exporter_source_partition_owned gauge
sspr_exporter_source_partition_owned{partition="0",source="eventhubs",topic="audit"} 1
sspr_exporter_source_partition_owned{partition="1",source="eventhubs",topic="audit"} 1
sspr_exporter_source_partition_owned{partition="2",source="eventhubs",topic="audit"} 0
`, "source_partition_lag", "source_checkpoint_age_seconds", "source_partition_owned")
	if lag, ok := m.TotalLag(); !ok || lag != 12 {
		t.Fatalf("TotalLag = %d, %v; want 12, true", lag, ok)
	}
}

// TestPartitionLagStale: a lag the source could not refresh is flagged,
// so that a frozen number does not pass for a healthy one.
func TestPartitionLagStale(t *testing.T) {
	m := New(withoutRuntimeCollectors())
	m.WatchPartitions("eventhubs", func() []PartitionStats {
		return []PartitionStats{
			{Topic: "audit", ID: "0", Owned: true, Lag: 0, LagStale: true},
			{Topic: "audit", ID: "1", Owned: true, Lag: 4},
			// Given up by the client while the hub does not answer.
			{Topic: "audit", ID: "2", Owned: false, Lag: 9, LagStale: true},
			// Another instance's.
			{Topic: "audit", ID: "3", Owned: false, Lag: 7},
		}
	})
	compare(t, m, `
# HELP sspr_exporter_source_partition_lag_stale 1 when the source could not refresh the partition's lag lately (the hub or broker does not answer): source_partition_lag then holds the last known value, a lower bound of the backlog. Only partitions this instance owns, or could not read lately (the client may have given them up while the service does not answer).
# TYPE sspr_exporter_source_partition_lag_stale gauge
sspr_exporter_source_partition_lag_stale{partition="0",source="eventhubs",topic="audit"} 1
sspr_exporter_source_partition_lag_stale{partition="1",source="eventhubs",topic="audit"} 0
sspr_exporter_source_partition_lag_stale{partition="2",source="eventhubs",topic="audit"} 1
`, "source_partition_lag_stale")
	// A stale lag still counts for the stall rule: it is a lower bound.
	if lag, ok := m.TotalLag(); !ok || lag != 4 {
		t.Fatalf("TotalLag = %d, %v; want 4, true", lag, ok)
	}
}

func TestRuntimeCollectorsAndLint(t *testing.T) {
	m := New()
	m.BatchDone(stream.Counts{Records: 1}, 0, nil)
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
		if !strings.HasPrefix(mf.GetName(), Namespace+"_") && !strings.HasPrefix(mf.GetName(), "go_") && !strings.HasPrefix(mf.GetName(), "process_") {
			t.Errorf("metric %s outside the namespace", mf.GetName())
		}
		if mf.GetHelp() == "" {
			t.Errorf("metric %s has no help", mf.GetName())
		}
	}
	for _, n := range []string{"go_goroutines", "sspr_exporter_build_info", "sspr_exporter_records_total"} {
		if !have[n] {
			t.Errorf("%s missing", n)
		}
	}
	// The exposition parses back as Prometheus text.
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	if _, err := p.TextToMetricFamilies(strings.NewReader(b.String())); err != nil {
		t.Fatalf("exposition does not parse: %v", err)
	}
	probs, err := testutil.GatherAndLint(m.Gatherer())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		if strings.HasPrefix(p.Metric, Namespace) {
			t.Errorf("lint %s: %s", p.Metric, p.Text)
		}
	}
}

func TestNopIsARecorder(t *testing.T) {
	var r Recorder = Nop{}
	r.BatchDone(stream.Counts{Records: 1}, time.Second, nil)
	r.DeadLetter("decode", string(deadletter.ReasonInvalidJSON))
	r.SinkWrite("kafka", 1, time.Second, nil)
	r.Retry("kafka")
}

type histo struct {
	count uint64
	sum   float64
}

func histogramOf(t *testing.T, m *Metrics, name string) histo {
	t.Helper()
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var h histo
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			h.count += mt.GetHistogram().GetSampleCount()
			h.sum += mt.GetHistogram().GetSampleSum()
		}
	}
	return h
}

func TestBatchDoneAloneCountsBatches(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := New(withoutRuntimeCollectors(), withClock(func() time.Time { return now }))
	m.BatchDone(stream.Counts{Records: 1}, time.Second, nil)
	m.BatchDone(stream.Counts{Records: 1}, time.Second, errors.New("sink down"))
	if !m.LastProgress().Equal(now) {
		t.Fatalf("LastProgress = %v", m.LastProgress())
	}
	compare(t, m, `
# HELP sspr_exporter_batches_total Batches acknowledged, by result: ok (every document durable or dead-lettered) or error (not delivered, not checkpointed).
# TYPE sspr_exporter_batches_total counter
sspr_exporter_batches_total{result="error"} 1
sspr_exporter_batches_total{result="ok"} 1
`, "batches_total")

	// With the Source decorator, the ack counts the batch and BatchDone
	// only the records.
	m2 := New(withoutRuntimeCollectors())
	src := m2.Source(emptyBatches(1, 1))
	b, _ := src.Read(context.Background())
	m2.BatchDone(stream.Counts{Records: 1}, time.Second, nil)
	_ = b.Ack(context.Background(), nil)
	compare(t, m2, `
# HELP sspr_exporter_batches_total Batches acknowledged, by result: ok (every document durable or dead-lettered) or error (not delivered, not checkpointed).
# TYPE sspr_exporter_batches_total counter
sspr_exporter_batches_total{result="ok"} 1
`, "batches_total")
}

func TestSinkStatsFrom(t *testing.T) {
	m := New(withoutRuntimeCollectors())
	var mu sync.Mutex
	cur := SinkStats{Retries: 4, Duplicates: 1, Requests: 10, HeldBytes: 2048, PastRetention: 2}
	m.SinkStatsFrom("elasticsearch", func() SinkStats { mu.Lock(); defer mu.Unlock(); return cur })
	m.Retry("kafka")
	compare(t, m, `
# HELP sspr_exporter_sink_retries_total Attempts a sink retried after a failure (Elasticsearch: documents sent again).
# TYPE sspr_exporter_sink_retries_total counter
sspr_exporter_sink_retries_total{sink="elasticsearch"} 4
sspr_exporter_sink_retries_total{sink="kafka"} 1
# HELP sspr_exporter_sink_held_bytes Bytes of request bodies a sink holds in flight now.
# TYPE sspr_exporter_sink_held_bytes gauge
sspr_exporter_sink_held_bytes{sink="elasticsearch"} 2048
`, "sink_retries_total", "sink_held_bytes")
	mu.Lock()
	cur = SinkStats{Retries: 9, Duplicates: 3, Requests: 12, HeldBytes: 0, PastRetention: 5}
	mu.Unlock()
	compare(t, m, `
# HELP sspr_exporter_sink_retries_total Attempts a sink retried after a failure (Elasticsearch: documents sent again).
# TYPE sspr_exporter_sink_retries_total counter
sspr_exporter_sink_retries_total{sink="elasticsearch"} 9
sspr_exporter_sink_retries_total{sink="kafka"} 1
# HELP sspr_exporter_sink_duplicates_total Documents a sink found already stored (at-least-once delivery seen twice).
# TYPE sspr_exporter_sink_duplicates_total counter
sspr_exporter_sink_duplicates_total{sink="elasticsearch"} 3
# HELP sspr_exporter_sink_requests_total Requests a sink sent, failed ones included.
# TYPE sspr_exporter_sink_requests_total counter
sspr_exporter_sink_requests_total{sink="elasticsearch"} 12
# HELP sspr_exporter_sink_held_bytes Bytes of request bodies a sink holds in flight now.
# TYPE sspr_exporter_sink_held_bytes gauge
sspr_exporter_sink_held_bytes{sink="elasticsearch"} 0
# HELP sspr_exporter_sink_past_retention_documents_total Documents a sink wrote into an index already older than its retention; ILM deletes them at its next run.
# TYPE sspr_exporter_sink_past_retention_documents_total counter
sspr_exporter_sink_past_retention_documents_total{sink="elasticsearch"} 5
`, "sink_retries_total", "sink_duplicates_total", "sink_requests_total", "sink_held_bytes", "sink_past_retention_documents_total")
}

// TestBatchDoneUnsupported: the records the pipeline found in a retired
// schema are dropped as unsupported, not as not_sspr, and every record
// counts as read.
func TestBatchDoneUnsupported(t *testing.T) {
	m := New(withoutRuntimeCollectors())
	c := stream.Counts{Records: 3, SSPR: 1, Dropped: 2, Unsupported: 1, ByAction: map[string]int64{"password-reset": 1}, ByOutcome: map[string]int64{"success": 1}}
	m.BatchDone(c, time.Second, nil)
	compare(t, m, `
# HELP sspr_exporter_records_total Entra records read, whatever became of them (SSPR, dropped or dead-lettered).
# TYPE sspr_exporter_records_total counter
sspr_exporter_records_total 3
# HELP sspr_exporter_records_dropped_total Records dropped on purpose: not_sspr (not an SSPR activity) or unsupported (SSPR activity of a retired schema).
# TYPE sspr_exporter_records_dropped_total counter
sspr_exporter_records_dropped_total{reason="not_sspr"} 1
sspr_exporter_records_dropped_total{reason="unsupported"} 1
`, "records_total", "records_dropped_total")
}
