package deliver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/detect"
	"github.com/sspr-exporter/sspr-exporter/internal/detect/alertindex"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/bulk"
)

// store answers _mget and _bulk create as a cluster does, from memory.
type store struct {
	mu   sync.Mutex
	docs map[string]bool // index/id
}

func (s *store) Do(_ context.Context, r bulk.Request) (*http.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out any
	switch {
	case strings.HasPrefix(r.Path, "/_mget"):
		var req struct {
			Docs []struct {
				Index string `json:"_index"`
				ID    string `json:"_id"`
			} `json:"docs"`
		}
		json.Unmarshal(r.Body, &req)
		var docs []map[string]any
		for _, d := range req.Docs {
			docs = append(docs, map[string]any{"_id": d.ID, "found": s.docs[d.Index+"/"+d.ID]})
		}
		out = map[string]any{"docs": docs}
	case strings.HasPrefix(r.Path, "/_bulk"):
		var items []any
		lines := bytes.Split(bytes.TrimSpace(r.Body), []byte("\n"))
		for i := 0; i < len(lines); i += 2 {
			var a struct {
				Create struct {
					Index string `json:"_index"`
					ID    string `json:"_id"`
				} `json:"create"`
			}
			json.Unmarshal(lines[i], &a)
			k := a.Create.Index + "/" + a.Create.ID
			st := 201
			if s.docs[k] {
				st = 409
			}
			s.docs[k] = true
			items = append(items, map[string]any{"create": map[string]any{"_id": a.Create.ID, "status": st}})
		}
		out = map[string]any{"errors": false, "items": items}
	default:
		return nil, errors.New("unexpected " + r.Path)
	}
	b, _ := json.Marshal(out)
	return &http.Response{StatusCode: 200, Body: io.NopCloser(bytes.NewReader(b)), Header: http.Header{}}, nil
}

func (*store) CloseIdleConnections() {}

// recorder is an output that records what it got, or fails.
type recorder struct {
	got  []string
	fail error
}

func (r *recorder) Name() string { return "recorder" }
func (r *recorder) Send(_ context.Context, alerts []detect.Alert) error {
	if r.fail != nil {
		return r.fail
	}
	for _, a := range alerts {
		r.got = append(r.got, a.ID)
	}
	return nil
}
func (r *recorder) Close(context.Context) error { return nil }

func alerts(ids ...string) []detect.Alert {
	var out []detect.Alert
	for _, id := range ids {
		out = append(out, detect.Alert{ID: id, RuleID: detect.IDSprayIP, Time: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)})
	}
	return out
}

func TestDeliverWithIndexSendsEachAlertOnce(t *testing.T) {
	st := &store{docs: map[string]bool{}}
	rec := &recorder{}
	ctx := context.Background()
	now := time.Now()
	// Two instances sharing the index, one after the other.
	a := &Outputs{Index: &alertindex.Index{Client: st, Red: secret.NewRedactor(), Prefix: "alerts"}, Outputs: []Output{rec}}
	b := &Outputs{Index: &alertindex.Index{Client: st, Red: secret.NewRedactor(), Prefix: "alerts"}, Outputs: []Output{rec}}
	steps := []struct {
		o    *Outputs
		in   []string
		want int
	}{
		{a, []string{"x", "y"}, 2},
		{a, []string{"x", "y"}, 0},
		{b, []string{"x", "y", "z"}, 1},
	}
	for i, s := range steps {
		fresh, err := s.o.Deliver(ctx, alerts(s.in...), now)
		if err != nil || len(fresh) != s.want {
			t.Fatalf("step %d: %d fresh, %v; want %d", i, len(fresh), err, s.want)
		}
	}
	if strings.Join(rec.got, ",") != "x,y,z" || !st.docs["alerts-2026.11/z"] {
		t.Errorf("sent %v, stored %v", rec.got, st.docs)
	}
}

func TestDeliverFailureLeavesTheAlertToSendAgain(t *testing.T) {
	st := &store{docs: map[string]bool{}}
	rec := &recorder{fail: errors.New("endpoint down")}
	o := &Outputs{Index: &alertindex.Index{Client: st, Red: secret.NewRedactor(), Prefix: "alerts"}, Outputs: []Output{rec}}
	if _, err := o.Deliver(context.Background(), alerts("x"), time.Now()); err == nil || !strings.Contains(err.Error(), "recorder: endpoint down") {
		t.Fatalf("err %v", err)
	}
	if len(st.docs) != 0 {
		t.Fatal("an alert an output refused was stored, so it would never be sent again")
	}
	rec.fail = nil
	if fresh, err := o.Deliver(context.Background(), alerts("x"), time.Now()); err != nil || len(fresh) != 1 {
		t.Fatalf("retry: %v %v", fresh, err)
	}
}

func TestDeliverWithoutIndexRemembersForMemory(t *testing.T) {
	rec := &recorder{}
	o := &Outputs{Outputs: []Output{rec}, Memory: time.Hour}
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for i, s := range []struct {
		at   time.Time
		want int
	}{{t0, 1}, {t0.Add(30 * time.Minute), 0}, {t0.Add(61 * time.Minute), 1}} {
		fresh, err := o.Deliver(context.Background(), alerts("x"), s.at)
		if err != nil || len(fresh) != s.want {
			t.Errorf("step %d: %d fresh, want %d (%v)", i, len(fresh), s.want, err)
		}
	}
}
