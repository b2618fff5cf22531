package esdouble

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestProxyFaults(t *testing.T) {
	d := New()
	defer d.Close()
	p := NewProxy(d.URL())
	defer p.Close()
	bulkBody := func(id string) string { return `{"create":{"_index":"p","_id":"` + id + `"}}` + "\n{}\n" }
	post := func(body string) (*http.Response, error) {
		return http.Post(p.URL()+"/_bulk?filter_path=errors,items.*.status,items.*.error", "application/json", strings.NewReader(body))
	}

	p.FailNext(1, 429)
	res, err := post(bulkBody("a"))
	if err != nil || res.StatusCode != 429 || res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Fatalf("FailNext: %v %v", res, err)
	}
	res.Body.Close()
	if d.Count("p") != 0 {
		t.Error("a failed request reached the node")
	}

	p.ResetAfterNext(1)
	if res, err := post(bulkBody("b")); err == nil {
		res.Body.Close()
		t.Fatal("ResetAfterNext: the client got an answer")
	}
	if d.Count("p") != 1 {
		t.Errorf("the reset request was not passed on: %d documents", d.Count("p"))
	}

	p.SetItemFaults(func() bool { return true })
	res, err = post(bulkBody("c"))
	if err != nil {
		t.Fatal(err)
	}
	var ans struct {
		Errors bool
		Items  []map[string]struct {
			Status int
			Error  struct{ Type string }
		}
	}
	_ = json.NewDecoder(res.Body).Decode(&ans)
	res.Body.Close()
	if !ans.Errors || len(ans.Items) != 1 || ans.Items[0]["create"].Status != 429 || ans.Items[0]["create"].Error.Type != "es_rejected_execution_exception" || d.Count("p") != 2 {
		t.Errorf("item fault: %+v, %d stored", ans, d.Count("p"))
	}
	p.SetItemFaults(nil)

	p.RequireAuthorization("ApiKey k")
	if res, err := post(bulkBody("d")); err != nil || res.StatusCode != 401 {
		t.Errorf("without credentials: %v %v", res, err)
	}
	p.RequireAuthorization("")

	p.SetDelay(200 * time.Millisecond)
	start := time.Now()
	res, err = post(bulkBody("e"))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("slow answer: %v %v", res, err)
	}
	res.Body.Close()
	if time.Since(start) < 200*time.Millisecond {
		t.Error("the answer was not held back")
	}
	p.SetDelay(0)

	p.SetDown(true)
	if res, err := post(bulkBody("f")); err == nil {
		res.Body.Close()
		t.Error("a down proxy answered")
	}
	p.SetDown(false)
	if st := p.Stats(); st.Failed != 1 || st.Reset != 1 || st.ItemFails != 1 {
		t.Errorf("stats %+v", st)
	}
}
