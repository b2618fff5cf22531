package bulktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// Call sends one request to the node at base and returns the status and
// the body; bodies of _bulk go as NDJSON.
func Call(t testing.TB, base, method, path, body string) (int, []byte) {
	t.Helper()
	st, b, err := request(base, method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return st, b
}

func request(base, method, path, body string) (int, []byte, error) {
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if strings.Contains(path, "_bulk") {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	return res.StatusCode, data, err
}

// MustCall is Call that fails t unless the node answers want.
func MustCall(t testing.TB, base, method, path, body string, want int) []byte {
	t.Helper()
	st, b := Call(t, base, method, path, body)
	if st != want {
		t.Fatalf("%s %s: status %d, want %d: %.600s", method, path, st, want, b)
	}
	return b
}

// Count refreshes the indices of pattern and counts their documents.
func Count(t testing.TB, base, pattern string) int {
	t.Helper()
	MustCall(t, base, http.MethodPost, "/"+pattern+"/_refresh?allow_no_indices=true", "", http.StatusOK)
	var res struct {
		Count int `json:"count"`
	}
	decode(t, MustCall(t, base, http.MethodGet, "/"+pattern+"/_count?allow_no_indices=true", "", http.StatusOK), &res)
	return res.Count
}

// IDCounts refreshes the indices of pattern and counts their documents by
// event.id, across indices, with a terms aggregation large enough for
// every id.
func IDCounts(t testing.TB, base, pattern string, atMost int) map[string]int {
	t.Helper()
	out, err := CountIDs(base, pattern, atMost)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// CountIDs is IDCounts for callers that tell a node that is down from a
// failure: it returns the error.
func CountIDs(base, pattern string, atMost int) (map[string]int, error) {
	if st, b, err := request(base, http.MethodPost, "/"+pattern+"/_refresh?allow_no_indices=true", ""); err != nil || st != http.StatusOK {
		return nil, fmt.Errorf("refresh %s: %d %.300s %v", pattern, st, b, err)
	}
	q := `{"size":0,"track_total_hits":true,"aggs":{"ids":{"terms":{"field":"event.id","size":` + itoa(atMost+1) + `}}}}`
	st, b, err := request(base, http.MethodPost, "/"+pattern+"/_search?allow_no_indices=true", q)
	if err != nil || st != http.StatusOK {
		return nil, fmt.Errorf("search %s: %d %.300s %v", pattern, st, b, err)
	}
	var res struct {
		Aggs struct {
			IDs struct {
				Other   int `json:"sum_other_doc_count"`
				Buckets []struct {
					Key   string `json:"key"`
					Count int    `json:"doc_count"`
				} `json:"buckets"`
			} `json:"ids"`
		} `json:"aggregations"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("search %s: %w", pattern, err)
	}
	if res.Aggs.IDs.Other != 0 {
		return nil, fmt.Errorf("terms aggregation left %d documents out: more than %d ids", res.Aggs.IDs.Other, atMost)
	}
	out := map[string]int{}
	for _, bk := range res.Aggs.IDs.Buckets {
		out[bk.Key] = bk.Count
	}
	return out, nil
}

// Indices lists the names of the indices of pattern, sorted.
func Indices(t testing.TB, base, pattern string) []string {
	t.Helper()
	var rows []struct {
		Index string `json:"index"`
	}
	decode(t, MustCall(t, base, http.MethodGet, "/_cat/indices/"+pattern+"?format=json&h=index&expand_wildcards=all", "", http.StatusOK), &rows)
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.Index)
	}
	sort.Strings(out)
	return out
}

// Source returns the stored _source of a document, or nil.
func Source(t testing.TB, base, index, id string) json.RawMessage {
	t.Helper()
	st, b := Call(t, base, http.MethodGet, "/"+index+"/_doc/"+url.PathEscape(id), "")
	if st == http.StatusNotFound {
		return nil
	}
	var doc struct {
		Source json.RawMessage `json:"_source"`
	}
	if st != http.StatusOK {
		t.Fatalf("get %s/%s: status %d: %s", index, id, st, b)
	}
	decode(t, b, &doc)
	return doc.Source
}

// WaitFor polls cond until it holds, failing t after a minute.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func decode(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %T: %v: %.600s", v, err, b)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
