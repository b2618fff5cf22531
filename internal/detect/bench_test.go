package detect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/eventstore"
)

// BenchmarkEvaluateFiles evaluates every rule over 100k documents of an
// NDJSON file: a week of mixed SSPR activity of 2,000 users, with geo,
// groups and roles, read and decoded by the file reader on each run.
func BenchmarkEvaluateFiles(b *testing.B) {
	const docs = 100_000
	path := filepath.Join(b.TempDir(), "events.ndjson")
	actions := []struct{ action, outcome string }{
		{"password-reset", "success"}, {"password-reset", "failure"}, {"password-reset-progress", "success"},
		{"password-reset-blocked", "failure"}, {"security-info-registered", "success"}, {"password-reset-by-admin", "success"},
		{"admin-security-info-registered", "success"}, {"account-unlock", "failure"},
	}
	countries := []string{"DE", "FR", "US", "BR", "JP"}
	var buf []byte
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	step := 7 * 24 * time.Hour / docs
	for i := range docs {
		a := actions[i%len(actions)]
		u := fmt.Sprintf("user%04d@contoso.example", (i*7919)%2000)
		e := ev(fmt.Sprintf("%08d", i), start.Add(time.Duration(i)*step), a.action, a.outcome, u,
			ip(fmt.Sprintf("192.0.2.%d", i%250)), country(countries[(i/97)%len(countries)]), asn(int64(64500+(i/131)%7)),
			domain("contoso.example"), groups("Staff", fmt.Sprintf("Team %d", i%20)), admin(fmt.Sprintf("admin%d@contoso.example", i%5)))
		if i%50 == 0 {
			e.User.Target.Roles = []string{"Helpdesk Administrator"}
		}
		buf = append(e.AppendJSON(buf), '\n')
	}
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		b.Fatal(err)
	}
	r, err := eventstore.NewFiles(path)
	if err != nil {
		b.Fatal(err)
	}
	e, err := NewEngine(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	var alerts int
	for b.Loop() {
		out, err := e.Evaluate(context.Background(), r, start, start.Add(7*24*time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		alerts = len(out)
	}
	b.ReportMetric(float64(docs)*float64(b.N)/b.Elapsed().Seconds(), "docs/s")
	b.ReportMetric(float64(alerts), "alerts")
	_ = ecs.Version
}
