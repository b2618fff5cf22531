package bulktest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/pipeline"
	"github.com/sspr-exporter/sspr-exporter/internal/retry"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
)

// Output is one search output under test against a real node.
type Output struct {
	// New returns the output's sink (its own client) writing to the node
	// at url with o.
	New func(url string, o bulk.Options, logger *slog.Logger) (*bulk.Sink, error)
	// Setup installs the output's templates for prefix on the node at url,
	// as far as the node takes them.
	Setup func(t testing.TB, url, prefix string)
	// MappingError is the engine's error type for a value its mapping
	// refuses (a per-item 400).
	MappingError string
	// Decoder and MaxBodyBytes are the exporter's decode stage and input
	// bound, as app.Decoder and the file source get them from the default
	// configuration (this package cannot import the app: the app imports
	// the outputs).
	Decoder      pipeline.Decoder
	MaxBodyBytes int
}

// Sink returns out's sink writing to the node at url with o, closed when
// t ends, logging (as text, debug and up) to logs when it is not nil.
func (out Output) Sink(t testing.TB, url string, o bulk.Options, logs *syncbuf.Buffer) *bulk.Sink {
	t.Helper()
	var l *slog.Logger
	if logs != nil {
		l = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := out.New(url, o, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// Nov is the date of most test events: their index is <prefix>-2026.11.01.
var Nov = time.Date(2026, 11, 14, 9, 30, 0, 0, time.UTC)

// Options are the settings of a test sink writing into indices of prefix:
// quick retries, and a context of patience bounds everything.
func Options(prefix string) bulk.Options {
	return bulk.Options{
		Index:          bulk.IndexConfig{Prefix: prefix, Granularity: bulk.Month, Shards: 1},
		Limits:         bulk.DefaultLimits,
		Retry:          retry.Config{InitialBackoff: 5 * time.Millisecond, MaxBackoff: 200 * time.Millisecond},
		RequestTimeout: 30 * time.Second,
		LogInterval:    200 * time.Millisecond,
		RetentionDays:  100000,
	}
}

// patience bounds every write of a test, so a sink that retries forever
// fails the test instead of hanging it.
const patience = 2 * time.Minute

// Ctx is a context for one test's writes, ending after patience.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	t.Cleanup(cancel)
	return ctx
}

// Run runs the checks that need a node with default settings, each in a
// subtest with indices of its own.
func Run(t *testing.T, out Output, url string) {
	t.Run("CreateWithID", func(t *testing.T) { createWithID(t, out, url) })
	t.Run("DateBuckets", func(t *testing.T) { dateBuckets(t, out, url) })
	t.Run("ReplayTestData", func(t *testing.T) { replayTestData(t, out, url) })
	t.Run("PerItemRejections", func(t *testing.T) { perItemRejections(t, out, url) })
	t.Run("RefusedRequestSplit", func(t *testing.T) { refusedRequestSplit(t, out, url) })
	t.Run("BlockedIndex", func(t *testing.T) { blockedIndex(t, out, url) })
	t.Run("LongIDs", func(t *testing.T) { longIDs(t, out, url) })
	t.Run("UnusualIDs", func(t *testing.T) { unusualIDs(t, out, url) })
	t.Run("Unaddressable", func(t *testing.T) { unaddressable(t, out, url) })
	t.Run("PastRetentionWarned", func(t *testing.T) { pastRetentionWarned(t, out, url) })
}

// Bulk documents are created once under their event id; a replay is
// answered 409 per item and counted as a duplicate, not stored again.
func createWithID(t *testing.T, out Output, url string) {
	const prefix = "ct-create"
	out.Setup(t, url, prefix)
	o := Options(prefix)
	o.Limits.MaxDocs = 400
	s := out.Sink(t, url, o, nil)
	docs := Events("create", 1000, Nov)
	if err := s.Write(Ctx(t), docs); err != nil {
		t.Fatalf("write: %v", err)
	}
	if n := Count(t, url, prefix+"-*"); n != 1000 {
		t.Fatalf("stored %d, want 1000", n)
	}
	if st := s.Stats(); st.BulkRequests != 3 || st.Created != 1000 {
		t.Errorf("stats %+v: want 1000 created in 3 requests", st)
	}
	want, _ := json.Marshal(docs[7])
	if got := Source(t, url, prefix+"-2026.11.01", "create-00007"); !sameJSON(got, want) {
		t.Errorf("stored source\n%s\nwant\n%s", got, want)
	}
	if err := s.Write(Ctx(t), docs); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if st := s.Stats(); st.Duplicates != 1000 || st.Created != 1000 {
		t.Errorf("after a replay: stats %+v, want 1000 duplicates", st)
	}
	if n := Count(t, url, prefix+"-*"); n != 1000 {
		t.Errorf("after a replay: stored %d, want 1000", n)
	}
	if err := s.Ready(); err != nil {
		t.Errorf("Ready: %v", err)
	}
	if err := s.Write(Ctx(t), nil); err != nil {
		t.Errorf("empty write: %v", err)
	}
}

// Each event goes to the index of its own date's bucket (in UTC), never
// the clock's: a replay of October a month later still lands in October.
func dateBuckets(t *testing.T, out Output, url string) {
	const prefix = "ct-buckets"
	out.Setup(t, url, prefix)
	s := out.Sink(t, url, Options(prefix), nil)
	oct := time.Date(2026, 10, 31, 23, 59, 59, 0, time.UTC)
	batch := append(Events("oct", 50, oct.Add(-time.Hour)), Events("nov", 50, Nov)...)
	batch = append(batch, Event("edge", oct), Event("cet", time.Date(2026, 12, 1, 0, 30, 0, 0, time.FixedZone("CET", 3600))))
	for round := range 3 {
		// Each round is a replay, e.g. after a crash before the checkpoint,
		// or of an archive a month later: the ids collide, nothing is added.
		if err := s.Write(Ctx(t), batch); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	if st := s.Stats(); st.Created != int64(len(batch)) || st.Duplicates != int64(2*len(batch)) {
		t.Errorf("stats %+v: want %d created, %d duplicates", st, len(batch), 2*len(batch))
	}
	want := []string{prefix + "-2026.10.01", prefix + "-2026.11.01"}
	if got := Indices(t, url, prefix+"-*"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("indices %v, want %v", got, want)
	}
	if n := Count(t, url, want[0]); n != 51 {
		t.Errorf("October index holds %d, want 51", n)
	}
	if n := Count(t, url, want[1]); n != 51 {
		t.Errorf("November index holds %d, want 51 (the CET event is November in UTC)", n)
	}
	day := Options("ct-daily")
	day.Index.Granularity = bulk.Day
	out.Setup(t, url, "ct-daily")
	if err := out.Sink(t, url, day, nil).Write(Ctx(t), Events("day", 1, Nov)); err != nil {
		t.Fatal(err)
	}
	if got := Indices(t, url, "ct-daily-*"); fmt.Sprint(got) != "[ct-daily-2026.11.14]" {
		t.Errorf("daily indices %v", got)
	}
}

// A document the node refuses for itself (a value its mapping refuses) is
// rejected alone, with the node's reason, for the pipeline to dead-letter;
// the rest of the request is stored.
func perItemRejections(t *testing.T, out Output, url string) {
	const prefix = "ct-reject"
	out.Setup(t, url, prefix)
	s := out.Sink(t, url, Options(prefix), nil)
	bad := Event("bad-ip", Nov)
	bad.Source.IP = "not-an-ip"
	docs := []ecs.Event{Event("good-1", Nov), bad, Event("good-2", Nov)}
	err := s.Write(Ctx(t), docs)
	checkRejected(t, err, out.MappingError, "source.ip", 1)

	// A source that breaks the mappings' types, which typed events cannot
	// produce: @timestamp as an object, through the same bulk path.
	index := prefix + "-2026.11.01"
	good, _ := json.Marshal(Event("raw-good", Nov))
	raw := []bulk.RawDoc{
		{Index: index, ID: "raw-good", Source: good},
		{Index: index, ID: "raw-bad", Source: []byte(`{"@timestamp":{"not":"a date"},"event":{"id":"raw-bad"}}`)},
	}
	checkRejected(t, s.WriteRaw(Ctx(t), raw), out.MappingError, "@timestamp", 1)
	if n := Count(t, url, prefix+"-*"); n != 3 {
		t.Errorf("stored %d, want the 3 good documents", n)
	}
	if st := s.Stats(); st.Rejected != 2 || st.Created != 3 {
		t.Errorf("stats %+v: want 3 created, 2 rejected", st)
	}
	if err := s.Ready(); err != nil {
		t.Errorf("a refused document made the sink unready: %v", err)
	}
}

// checkRejected asserts that err rejects exactly document at, with the
// node's 400 of errType naming field.
func checkRejected(t *testing.T, err error, errType, field string, at int) {
	t.Helper()
	rej, ok := stream.AsRejected(err)
	if !ok || len(rej.Docs) != 1 || rej.Docs[0].Index != at {
		t.Fatalf("want document %d rejected, got %v", at, err)
	}
	var ie *bulk.ItemError
	if !errors.As(rej.Docs[0].Err, &ie) || ie.Status != http.StatusBadRequest || ie.Type != errType || !strings.Contains(ie.Reason, field) {
		t.Errorf("rejection %#v, want a 400 %s naming %s", rej.Docs[0].Err, errType, field)
	}
}

// The node refuses a bulk request whole when one _id is longer than 512
// bytes. The request is halved until the document that causes it is
// alone; that document is rejected, the others are stored. (Write hashes
// such ids; WriteRaw sends them as given, as a request with them looks.)
func refusedRequestSplit(t *testing.T, out Output, url string) {
	const prefix = "ct-split400"
	out.Setup(t, url, prefix)
	s := out.Sink(t, url, Options(prefix), nil)
	docs := Events("split400", 16, Nov)
	raw := make([]bulk.RawDoc, len(docs))
	for i := range docs {
		raw[i] = bulk.RawDoc{Index: prefix + "-2026.11.01", ID: docs[i].Event.ID, Source: docs[i].AppendJSON(nil)}
	}
	raw[3].ID, raw[11].ID = strings.Repeat("3", 600), strings.Repeat("b", 513)
	rej, ok := stream.AsRejected(s.WriteRaw(Ctx(t), raw))
	if !ok || len(rej.Docs) != 2 || rej.Docs[0].Index != 3 || rej.Docs[1].Index != 11 {
		t.Fatalf("want documents 3 and 11 rejected, got %+v", rej)
	}
	for _, r := range rej.Docs {
		var ie *bulk.ItemError
		if !errors.As(r.Err, &ie) || ie.Status != http.StatusBadRequest || ie.Type != "action_request_validation_exception" || !strings.Contains(ie.Reason, "is too long") {
			t.Errorf("rejection of %d: %#v", r.Index, r.Err)
		}
	}
	if n := Count(t, url, prefix+"-*"); n != 14 {
		t.Errorf("stored %d of 14", n)
	}
	if st := s.Stats(); st.Created != 14 || st.Rejected != 2 {
		t.Errorf("stats %+v: want 14 created, 2 rejected", st)
	}
	if err := s.Ready(); err != nil {
		t.Errorf("a refused document made the sink unready: %v", err)
	}
}

// The node refuses a whole request when one _id is longer than 512 bytes
// of UTF-8, so such ids are stored under a hash of themselves, the same
// on every replay, and kept whole in event.id.
func longIDs(t *testing.T, out Output, url string) {
	const prefix = "ct-longid"
	out.Setup(t, url, prefix)
	index := prefix + "-2026.11.01"
	s := out.Sink(t, url, Options(prefix), nil)
	long := strings.Repeat("é", 300)       // 300 characters, 600 bytes
	invalid := strings.Repeat("\xff", 200) // 200 bytes here, 600 once JSON makes each byte U+FFFD
	exact := strings.Repeat("x", 512)
	docs := append(Events("long", 13, Nov), Event(long, Nov), Event(invalid, Nov), Event(exact, Nov))
	if err := s.Write(Ctx(t), docs); err != nil {
		t.Fatalf("write: %v", err)
	}
	if n := Count(t, url, prefix+"-*"); n != 16 {
		t.Fatalf("stored %d of 16", n)
	}
	if got := storedEventID(t, url, index, bulk.DocID(long)); got != long {
		t.Errorf("event.id of the hashed document = %.40q..., want the record id", got)
	}
	if !strings.HasPrefix(bulk.DocID(invalid), "longid-sha256-") || storedEventID(t, url, index, bulk.DocID(invalid)) == "" {
		t.Errorf("the id of invalid UTF-8 is not stored under its hash")
	}
	if got := storedEventID(t, url, index, exact); got != exact {
		t.Errorf("a 512-byte id is not stored as is")
	}
	// A replay lands on the same _id: nothing is added.
	if err := s.Write(Ctx(t), docs); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if st := s.Stats(); st.Duplicates != 16 || Count(t, url, prefix+"-*") != 16 {
		t.Errorf("after a replay: %d duplicates, %d stored; want 16, 16", st.Duplicates, Count(t, url, prefix+"-*"))
	}
	// A record whose own id looks like a hashed one is hashed as well, so
	// it can never be taken for the long one's copy.
	lookAlike := bulk.DocID(long)
	if err := s.Write(Ctx(t), []ecs.Event{Event(lookAlike, Nov)}); err != nil {
		t.Fatal(err)
	}
	if Count(t, url, prefix+"-*") != 17 || storedEventID(t, url, index, bulk.DocID(lookAlike)) != lookAlike {
		t.Errorf("a look-alike id was not stored apart: %d documents", Count(t, url, prefix+"-*"))
	}
}

// storedEventID is event.id of the document stored under _id id.
func storedEventID(t *testing.T, url, index, id string) string {
	t.Helper()
	src := Source(t, url, index, id)
	if src == nil {
		t.Fatalf("no document under _id %.80q", id)
	}
	var doc struct {
		Event struct {
			ID string `json:"id"`
		} `json:"event"`
	}
	if err := json.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Event.ID
}

// Ids with characters JSON escapes are stored under exactly those ids.
func unusualIDs(t *testing.T, out Output, url string) {
	const prefix = "ct-unusual"
	out.Setup(t, url, prefix)
	s := out.Sink(t, url, Options(prefix), nil)
	id := "a\"b\\c/d\u00e9\u2028 e"
	if err := s.Write(Ctx(t), []ecs.Event{Event(id, Nov)}); err != nil {
		t.Fatal(err)
	}
	if got := storedEventID(t, url, prefix+"-2026.11.01", id); got != id {
		t.Errorf("stored under %q", got)
	}
}

// A document without an id or a time cannot be stored exactly once in the
// right index: it is rejected before anything is sent; one with only
// @timestamp is stored.
func unaddressable(t *testing.T, out Output, url string) {
	const prefix = "ct-noaddr"
	out.Setup(t, url, prefix)
	s := out.Sink(t, url, Options(prefix), nil)
	noID := Event("", Nov)
	noTime := Event("notime", Nov)
	noTime.Time, noTime.Timestamp = time.Time{}, "garbage"
	onlyStamp := Event("stamp", Nov)
	onlyStamp.Time = time.Time{}
	rej, ok := stream.AsRejected(s.Write(Ctx(t), []ecs.Event{noID, noTime, onlyStamp}))
	if !ok || len(rej.Docs) != 2 || rej.Docs[0].Index != 0 || rej.Docs[1].Index != 1 {
		t.Fatalf("got %+v, want documents 0 and 1 rejected", rej)
	}
	if Source(t, url, prefix+"-2026.11.01", "stamp") == nil {
		t.Error("a document with only @timestamp was not stored")
	}
}

// A read-only or closed index refuses every document alike: the sink
// retries (and says why it is not ready) instead of rejecting, and stores
// everything once the index takes writes again.
func blockedIndex(t *testing.T, out Output, url string) {
	for _, block := range []string{"read-only", "closed"} {
		t.Run(block, func(t *testing.T) {
			prefix := "ct-blocked-" + strings.ReplaceAll(block, "-", "")
			out.Setup(t, url, prefix)
			index := prefix + "-2026.11.01"
			MustCall(t, url, http.MethodPut, "/"+index, "", http.StatusOK)
			set := func(on bool) {
				if block == "closed" {
					op := map[bool]string{true: "_close", false: "_open"}[on]
					MustCall(t, url, http.MethodPost, "/"+index+"/"+op+"?wait_for_active_shards=1", "", http.StatusOK)
					return
				}
				MustCall(t, url, http.MethodPut, "/"+index+"/_settings", fmt.Sprintf(`{"index.blocks.write":%v}`, on), http.StatusOK)
			}
			set(true)
			s := out.Sink(t, url, Options(prefix), nil)
			done := make(chan error, 1)
			go func() { done <- s.Write(Ctx(t), Events(prefix, 5, Nov)) }()
			WaitFor(t, "the sink to report the block", func() bool { return s.Ready() != nil })
			want := map[string]string{"read-only": "cluster_block_exception", "closed": "index_closed_exception"}[block]
			if r := s.Ready(); r == nil || !strings.Contains(r.Error(), want) {
				t.Errorf("Ready() = %v, want %s", r, want)
			}
			WaitFor(t, "a few retries", func() bool { return s.Stats().Retried >= 3 })
			select {
			case err := <-done:
				t.Fatalf("Write returned while the index was %s: %v", block, err)
			default:
			}
			set(false)
			if err := <-done; err != nil {
				t.Fatalf("after unblocking: %v", err)
			}
			if n := Count(t, url, index); n != 5 {
				t.Errorf("stored %d of 5", n)
			}
			if err := s.Ready(); err != nil {
				t.Errorf("still unready: %v", err)
			}
		})
	}
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

// A lifecycle policy deletes an index once its age reaches the retention:
// documents backfilled into an index already that old are gone soon after
// they are acknowledged (Elasticsearch) or kept past it (OpenSearch). The
// sink counts them and says so, at most once per log interval.
func pastRetentionWarned(t *testing.T, out Output, url string) {
	const prefix = "ct-retention"
	out.Setup(t, url, prefix)
	o := Options(prefix)
	o.RetentionDays = 400
	o.LogInterval = time.Hour // one warning for the whole test
	logs := &syncbuf.Buffer{}
	s := out.Sink(t, url, o, logs)
	old := time.Now().UTC().AddDate(-2, 0, 0)
	oldIndex := bulk.IndexName(prefix, bulk.Month, old)
	if err := s.Write(Ctx(t), Events("recent", 5, time.Now().UTC())); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "retention") {
		t.Fatalf("warned about recent documents:\n%s", logs)
	}
	for round := range 3 {
		if err := s.Write(Ctx(t), Events("old", 4, old.Add(time.Duration(round)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	if n := Count(t, url, oldIndex); n != 4 {
		t.Errorf("the old documents are not stored: %d", n)
	}
	var lines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "retention") {
			lines = append(lines, l)
		}
	}
	if st := s.Stats(); st.PastRetention != 12 {
		t.Errorf("PastRetention = %d, want the 12 old documents written", st.PastRetention)
	}
	if len(lines) != 1 || !strings.Contains(lines[0], oldIndex) || !strings.Contains(lines[0], "retention_days=400") || !strings.Contains(lines[0], "level=WARN") {
		t.Errorf("want one warning naming %s and the retention, got %d:\n%s", oldIndex, len(lines), strings.Join(lines, "\n"))
	}
}
