package eventstore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
)

func doc(id, ts, action, outcome, tenant, upn string, groups ...string) ecs.Event {
	e := ecs.Event{Timestamp: ts, Event: ecs.EventMeta{ID: id, Action: action, Outcome: outcome, Kind: "event"}}
	e.Time, _ = time.Parse(time.RFC3339Nano, ts)
	e.Cloud.Account.ID = tenant
	e.User.Target.Name = upn
	if at := strings.IndexByte(upn, '@'); at >= 0 {
		e.User.Target.Domain = upn[at+1:]
	}
	e.User.Target.Group.Name = groups
	return e
}

func TestMatch(t *testing.T) {
	e := doc("a", "2026-11-02T08:00:00Z", "password-reset", "success", "t1", "Noor@Contoso.example", "Help Desk")
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	cases := []struct {
		q    Query
		want bool
	}{
		{Query{}, true},
		{Query{From: at("2026-11-02T08:00:00Z")}, true},
		{Query{To: at("2026-11-02T08:00:00Z")}, false}, // To is exclusive
		{Query{From: at("2026-11-02T08:00:01Z")}, false},
		{Query{Tenants: []string{"t2", "t1"}}, true},
		{Query{Tenants: []string{"t2"}}, false},
		{Query{Domains: []string{"contoso.EXAMPLE"}}, true},
		{Query{Domains: []string{"fabrikam.example"}}, false},
		{Query{Groups: []string{"help desk"}}, true},
		{Query{Groups: []string{"Admins"}}, false},
		{Query{Users: []string{"noor@contoso.example"}}, true},
		{Query{Users: []string{"other@contoso.example"}}, false},
		{Query{Actions: []string{"password-reset"}, Outcomes: []string{"success"}}, true},
		{Query{Actions: []string{"password-reset"}, Outcomes: []string{"failure"}}, false},
	}
	for i, c := range cases {
		if got := c.q.Match(&e); got != c.want {
			t.Errorf("case %d %+v: Match = %v, want %v", i, c.q, got, c.want)
		}
	}
	// A detection alert stored beside the events is never one of them.
	alert := e
	alert.Event.Kind = "alert"
	if (&Query{}).Match(&alert) {
		t.Error("an alert document matched")
	}
}

func TestFilesScanInOrderOnce(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, docs ...ecs.Event) string {
		var b []byte
		for i := range docs {
			b = docs[i].AppendJSON(b)
			b = append(b, '\n')
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.ndjson",
		doc("3", "2026-11-03T00:00:00Z", "password-reset", "success", "t1", "a@x.example"),
		doc("1", "2026-11-01T00:00:00Z", "password-reset", "failure", "t1", "b@x.example"))
	b := write("b.ndjson",
		doc("2", "2026-11-01T00:00:00Z", "password-reset", "success", "t1", "c@x.example"),
		doc("3", "2026-11-03T00:00:00Z", "password-reset", "success", "t1", "a@x.example"))
	r, err := NewFiles(a, b)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := r.Scan(context.Background(), Query{}, func(e *ecs.Event) error {
		got = append(got, e.Event.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "1,2,3" {
		t.Errorf("order %v, want 1,2,3 (by time, then id, each once)", got)
	}
	src := r.Describe()
	if src.Kind != "files" || len(src.Files) != 2 || len(src.Files[0].SHA256) != 64 || src.Files[0].Size == 0 {
		t.Errorf("Describe = %+v", src)
	}
	if _, err := NewFiles(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing input was accepted")
	}
	bad := filepath.Join(dir, "bad.ndjson")
	os.WriteFile(bad, []byte("{\"@timestamp\":\"x\"}\n"), 0o600)
	r2, _ := NewFiles(bad)
	if err := r2.Scan(context.Background(), Query{}, func(*ecs.Event) error { return nil }); err == nil || !strings.Contains(err.Error(), "bad.ndjson:1") {
		t.Errorf("bad line: %v", err)
	}
}
