package bulk_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk/bulktest"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/esdouble"
)

var nov = time.Date(2026, 11, 14, 9, 30, 0, 0, time.UTC)

var testEngine = bulk.Engine{
	Name:             "search",
	RetentionWarning: "past the retention",
	FromNode:         func(h http.Header, _ bulk.Failure) bool { return h.Get("X-Elastic-Product") != "" },
}

// newSink returns a core sink writing to the double d with plain HTTP.
func newSink(t testing.TB, d *esdouble.Double, opts bulk.Options) *bulk.Sink {
	t.Helper()
	if opts.Index.Prefix == "" {
		opts.Index = bulk.DefaultIndex
	}
	if opts.Limits.MaxDocs == 0 {
		opts.Limits = bulk.DefaultLimits
	}
	opts.Retry = retry.Config{InitialBackoff: 5 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	opts.RequestTimeout, opts.LogInterval = 10*time.Second, time.Second
	s := bulk.New(testEngine, bulktest.HTTPClient(d.URL()), opts, secret.NewRedactor(), nil)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func TestIndexName(t *testing.T) {
	cases := []struct {
		gran string
		at   time.Time
		want string
	}{
		{bulk.Month, nov, "entra-sspr-2026.11.01"},
		{bulk.Month, time.Date(2026, 11, 30, 23, 59, 59, 999, time.UTC), "entra-sspr-2026.11.01"},
		{bulk.Month, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), "entra-sspr-2026.12.01"},
		// The bucket is the UTC date, whatever zone the time carries.
		{bulk.Month, time.Date(2026, 12, 1, 0, 30, 0, 0, time.FixedZone("CET", 3600)), "entra-sspr-2026.11.01"},
		{bulk.Day, nov, "entra-sspr-2026.11.14"},
		{bulk.Year, nov, "entra-sspr-2026.01.01"},
		{bulk.Month, time.Date(999, 2, 3, 0, 0, 0, 0, time.UTC), "entra-sspr-0999.02.01"},
		{bulk.Day, time.Date(7, 2, 3, 0, 0, 0, 0, time.UTC), "entra-sspr-0007.02.03"},
	}
	for _, c := range cases {
		if got := bulk.IndexName("entra-sspr", c.gran, c.at); got != c.want {
			t.Errorf("IndexName(%s, %v) = %s, want %s", c.gran, c.at, got, c.want)
		}
	}
}

// The age is counted as ILM does with parse_origination_date: from the
// first day of the bucket in the index name, UTC midnight; the delete phase
// begins when the age reaches retention_days.
func TestPastRetentionBoundary(t *testing.T) {
	cases := []struct {
		gran      string
		retention int
		event     time.Time
		now       time.Time
		past      bool
	}{
		{bulk.Month, 30, nov, time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC), false},
		{bulk.Month, 30, nov, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), true},
		{bulk.Day, 1, nov, time.Date(2026, 11, 14, 23, 59, 59, 0, time.UTC), false},
		{bulk.Day, 1, nov, time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC), true},
		{bulk.Year, 400, nov, time.Date(2027, 2, 4, 23, 0, 0, 0, time.UTC), false},
		{bulk.Year, 400, nov, time.Date(2027, 2, 5, 0, 0, 0, 0, time.UTC), true},
		// A future date (a clock that is wrong somewhere) is never past.
		{bulk.Month, 30, nov, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), false},
	}
	for _, c := range cases {
		d := esdouble.New()
		s := newSink(t, d, bulk.Options{Index: bulk.IndexConfig{Prefix: "entra-sspr", Granularity: c.gran, Shards: 1}, RetentionDays: c.retention})
		s.SetNow(func() time.Time { return c.now })
		if err := s.Write(context.Background(), bulktest.Events("edge", 1, c.event)); err != nil {
			t.Fatal(err)
		}
		if got := s.Stats().PastRetention == 1; got != c.past || d.Count("*") != 1 {
			t.Errorf("%s bucket, %d days, event %v, now %v: past retention %v, want %v", c.gran, c.retention, c.event, c.now, got, c.past)
		}
		d.Close()
	}
}

// BenchmarkEncode measures the sink's own per-document work: choosing the
// index and writing the action and source lines.
func BenchmarkEncode(b *testing.B) {
	docs := bulktest.Events("enc", 1000, nov)
	var buf bytes.Buffer
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		d := &docs[n%len(docs)]
		n++
		if buf.Len() > 4<<20 {
			buf.Reset()
		}
		start := buf.Len()
		bulk.EncodeEvent(&buf, bulk.IndexName("entra-sspr", bulk.Month, d.Time), d)
		b.SetBytes(int64(buf.Len() - start))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
}

// answerClient answers every bulk request with all its items created, in
// the shape a node sends for the sink's filter_path, without a network or
// a node: what is left to measure is the sink's own work.
type answerClient struct{ answers map[int][]byte }

func (c *answerClient) Do(_ context.Context, r bulk.Request) (*http.Response, error) {
	n := bytes.Count(r.Body, []byte("\n")) / 2
	b, ok := c.answers[n]
	if !ok {
		var buf bytes.Buffer
		buf.WriteString(`{"errors":false,"items":[`)
		for i := range n {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.WriteString(`{"create":{"status":201}}`)
		}
		buf.WriteString("]}")
		b = buf.Bytes()
		c.answers[n] = b
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(b))}, nil
}

func (*answerClient) CloseIdleConnections() {}

// BenchmarkSinkCPU measures the sink's own CPU per document: choosing the
// index, encoding, building the bulk body, and reading a 201 answer per
// item. One op is a Write of 1000 documents of about 1.5 KB.
func BenchmarkSinkCPU(b *testing.B) {
	docs := bulktest.SizedEvents("bench", 1000)
	size := 0
	var buf bytes.Buffer
	for i := range docs {
		buf.Reset()
		bulk.EncodeEvent(&buf, "entra-sspr-2026.11.01", &docs[i])
		size += buf.Len()
	}
	opts := bulk.Options{Index: bulk.DefaultIndex, Limits: bulk.DefaultLimits, Retry: bulk.DefaultRetry,
		RequestTimeout: time.Minute, LogInterval: time.Minute}
	s := bulk.New(testEngine, &answerClient{answers: map[int][]byte{}}, opts, secret.NewRedactor(), nil)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Write(context.Background(), docs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/float64(len(docs)), "bytes/doc")
	b.ReportMetric(b.Elapsed().Seconds()*1e6/float64(b.N*len(docs)), "µs/doc")
}
