package bulktest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/syncbuf"
	"github.com/sspr-exporter/sspr-exporter/internal/testserver/searchnode"
)

// LimitSettings are the settings of the node RunLimits needs: a small
// http.max_content_length (413 for larger bodies) and a small indexing
// pressure limit (429 for a request while another holds most of it).
func LimitSettings() []searchnode.Option {
	return []searchnode.Option{
		searchnode.Setting("http.max_content_length", "48kb"),
		searchnode.Setting("indexing_pressure.memory.limit", "64kb"),
	}
}

// RunLimits runs the checks that need a node started with LimitSettings.
func RunLimits(t *testing.T, out Output, url string) {
	t.Run("OversizedRequestSplit", func(t *testing.T) { oversizedSplit(t, out, url) })
	t.Run("TooManyRequestsRetried", func(t *testing.T) { tooManyRequests(t, out, url) })
}

// A body over http.max_content_length is refused whole (413, no body); it
// is halved until it passes, and a document too large alone is rejected.
func oversizedSplit(t *testing.T, out Output, url string) {
	const prefix = "ct-split413"
	out.Setup(t, url, prefix)
	s := out.Sink(t, url, Options(prefix), nil)
	huge := Event("huge", Nov)
	huge.Event.Original = strings.Repeat("x", 60<<10)
	docs := append(Events("split", 40, Nov), huge)
	rej, ok := stream.AsRejected(s.Write(Ctx(t), docs))
	if !ok || len(rej.Docs) != 1 || rej.Docs[0].Index != 40 || !strings.Contains(rej.Docs[0].Err.Error(), "413") {
		t.Fatalf("want only the huge document rejected for 413, got %+v", rej)
	}
	if n := Count(t, url, prefix+"-*"); n != 40 {
		t.Errorf("stored %d of 40", n)
	}
	if st := s.Stats(); st.BulkRequests < 4 {
		t.Errorf("stats %+v: the request was not split", st)
	}

	// A body far over the limit: the node may close the connection
	// before it has read it all, so that the client sees its write fail
	// (broken pipe) instead of the 413.
	big := Events("bigsplit", 1000, Nov)
	ctx, cancel := context.WithTimeout(Ctx(t), time.Minute)
	defer cancel()
	if err := s.Write(ctx, big); err != nil {
		t.Fatalf("a request of %d documents far over http.max_content_length: %v (stats %+v)", len(big), err, s.Stats())
	}
	if n := Count(t, url, prefix+"-*"); n != 1040 {
		t.Errorf("stored %d of 1040", n)
	}
}

// A whole request answered 429 (indexing pressure: another request holds
// most of the node's indexing memory) is retried until it goes through,
// without making the sink unready. The other request is one the node
// keeps open: its writes wait for a replica that cannot exist on one
// node, until the index is told it has none.
func tooManyRequests(t *testing.T, out Output, url string) {
	const prefix = "ct-busy"
	out.Setup(t, url, prefix)
	release := HoldIndexingMemory(t, url)
	logs := &syncbuf.Buffer{}
	o := Options(prefix)
	o.Limits.MaxBytes, o.Limits.MaxInFlight = 30<<10, 1
	s := out.Sink(t, url, o, logs)
	docs := Events("busy", 50, Nov)
	done := make(chan error, 1)
	go func() { done <- s.Write(Ctx(t), docs) }()
	WaitFor(t, "a few 429s", func() bool { return s.Stats().Retried >= 3 })
	if st := s.Stats(); st.Created != 0 {
		t.Fatalf("stats %+v: documents got through while the memory was held", st)
	}
	if !strings.Contains(logs.String(), "429") || !strings.Contains(logs.String(), "rejected_execution_exception") {
		t.Errorf("the sink did not say it was refused with 429:\n%s", logs)
	}
	if err := s.Ready(); err != nil {
		t.Errorf("429s must not make the sink unready: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Write returned while refused: %v", err)
	default:
	}

	release()
	if err := <-done; err != nil {
		t.Fatalf("write after the memory was released: %v", err)
	}
	if n := Count(t, url, prefix+"-*"); n != len(docs) {
		t.Errorf("stored %d of %d", n, len(docs))
	}
	if st := s.Stats(); st.Created != int64(len(docs)) || st.Rejected != 0 {
		t.Errorf("stats %+v", st)
	}
}

// HoldIndexingMemory keeps about 44 KB of the node's indexing memory
// (of the 64kb of LimitSettings) taken until release is called, so that a
// bulk request of more than about 20 KB is answered 429 meanwhile. The
// holding request's writes wait for a replica that a single node cannot
// have; release tells its index it has none, and waits for the request.
func HoldIndexingMemory(t testing.TB, url string) (release func()) {
	t.Helper()
	MustCall(t, url, http.MethodPut, "/ct-hold", `{"settings":{"number_of_shards":1,"number_of_replicas":1}}`, http.StatusOK)
	var hold strings.Builder
	for i := range 40 {
		fmt.Fprintf(&hold, `{"create":{"_index":"ct-hold","_id":"h%d"}}`+"\n"+`{"pad":%q}`+"\n", i, strings.Repeat("p", 900))
	}
	held := make(chan int, 1)
	go func() {
		st, _ := Call(t, url, http.MethodPost, "/_bulk?wait_for_active_shards=all&timeout=3m", hold.String())
		held <- st
	}()
	WaitFor(t, "the holding request to take the indexing memory", func() bool { return coordinatingBytes(t, url) >= 32<<10 })
	return func() {
		t.Helper()
		MustCall(t, url, http.MethodPut, "/ct-hold/_settings", `{"index":{"number_of_replicas":0}}`, http.StatusOK)
		if st := <-held; st != http.StatusOK {
			t.Errorf("the holding request ended with %d", st)
		}
		MustCall(t, url, http.MethodDelete, "/ct-hold", "", http.StatusOK)
	}
}

// coordinatingBytes is the indexing memory the node's requests in flight
// hold now.
func coordinatingBytes(t testing.TB, url string) int {
	var stats struct {
		Nodes map[string]struct {
			Pressure struct {
				Memory struct {
					Current struct {
						Coordinating int `json:"coordinating_in_bytes"`
					} `json:"current"`
				} `json:"memory"`
			} `json:"indexing_pressure"`
		} `json:"nodes"`
	}
	b := MustCall(t, url, http.MethodGet, "/_nodes/stats/indexing_pressure", "", http.StatusOK)
	if err := json.Unmarshal(b, &stats); err != nil {
		t.Fatalf("node stats: %v: %.300s", err, b)
	}
	n := 0
	for _, node := range stats.Nodes {
		n += node.Pressure.Memory.Current.Coordinating
	}
	return n
}
