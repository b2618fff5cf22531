package scenario_test

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/app"
	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/gen/scenario"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// TestEntraFormatDecodes: the raw records of --format entra, read by the
// exporter's decode stage as configured by default, become the stream's
// documents byte for byte, less the fields the enrichers add.
func TestEntraFormatDecodes(t *testing.T) {
	s := generate(t, scenario.Options{Scenario: "spray", Seed: 5, Users: 500})
	var raw bytes.Buffer
	if err := s.WriteEntra(&raw); err != nil {
		t.Fatal(err)
	}
	d, err := app.Decoder(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	var bodies []stream.Body
	sc := bufio.NewScanner(&raw)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		bodies = append(bodies, stream.Body{Data: bytes.Clone(sc.Bytes())})
	}
	res := d.Decode(bodies)
	if len(res.DeadLetters) > 0 || len(res.Docs) != len(s.Docs) {
		t.Fatalf("%d documents and %d dead letters from %d records", len(res.Docs), len(res.DeadLetters), len(s.Docs))
	}
	for i := range s.Docs {
		want := s.Docs[i]
		want.Source.Geo, want.Source.AS = ecs.Geo{}, ecs.AS{}
		want.User.Target.Group, want.User.Target.Roles = ecs.TargetGroup{}, nil
		if g, w := res.Docs[i].AppendJSON(nil), want.AppendJSON(nil); !bytes.Equal(g, w) {
			t.Fatalf("document %d:\n got %s\nwant %s", i, g, w)
		}
	}
}
