package e2e

import (
	"fmt"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// recorder is a testing.TB that keeps errors instead of failing, to show
// that the checkers detect what they are meant to.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheckpointCheckCatchesEarlyCheckpoint(t *testing.T) {
	bodies := []published{
		{body: body{ids: []string{"A1", "A2"}}, partition: "0", seq: 0, offset: "0"},
		{body: body{ids: []string{"B1"}}, partition: "0", seq: 1, offset: "1000"},
		{body: body{ids: []string{"C1"}}, partition: "0", seq: 2, offset: "2000"},
		{body: body{ids: []string{"D1"}}, partition: "1", seq: 0, offset: "0"},
	}
	docs := docSet{count: map[string]int{"A1": 1, "A2": 2, "D1": 1}}

	ok := &recorder{TB: t}
	if n := checkCheckpointed(ok, map[string]checkpoint{"0": {seq: 0, offset: "0"}, "1": {seq: 0, offset: "0"}}, bodies, docs); n != 2 || len(ok.errs) != 0 {
		t.Errorf("delivered bodies: covered %d, errors %v", n, ok.errs)
	}
	early := &recorder{TB: t}
	checkCheckpointed(early, map[string]checkpoint{"0": {seq: 1, offset: "1000"}}, bodies, docs)
	if len(early.errs) != 1 {
		t.Errorf("a checkpoint past an undelivered body: errors %v, want one about B1", early.errs)
	}
	wrongOffset := &recorder{TB: t}
	checkCheckpointed(wrongOffset, map[string]checkpoint{"1": {seq: 0, offset: "5"}}, bodies, docs)
	if len(wrongOffset.errs) != 1 {
		t.Errorf("a checkpoint with the wrong offset: errors %v, want one", wrongOffset.errs)
	}
}

func TestPoisonCheckNeedsPosition(t *testing.T) {
	seq := int64(7)
	b := published{body: body{poison: true, marker: "POISON-X"}, partition: "2", seq: 7, offset: "7000"}
	raw := "garbage POISON-X"
	good := deadletter.Record{Stage: deadletter.StageDecode, Raw: &raw,
		Source: stream.Position{Kind: "eventhubs", Topic: "audit", Partition: "2", Offset: "7000", Sequence: &seq}}

	ok := &recorder{TB: t}
	if !checkPoisonDeadLettered(ok, []deadletter.Record{good}, "audit", b, b.marker) || len(ok.errs) != 0 {
		t.Errorf("a correct dead letter: errors %v", ok.errs)
	}
	otherPartition := good
	otherPartition.Source.Partition = "3"
	if checkPoisonDeadLettered(&recorder{TB: t}, []deadletter.Record{otherPartition}, "audit", b, b.marker) {
		t.Error("a dead letter of another partition counted as the body's")
	}
	wrongOffset := good
	wrongOffset.Source.Offset = "6000"
	rec := &recorder{TB: t}
	checkPoisonDeadLettered(rec, []deadletter.Record{wrongOffset}, "audit", b, b.marker)
	if len(rec.errs) != 1 {
		t.Errorf("a dead letter with the wrong offset: errors %v, want one", rec.errs)
	}
	other := "another body"
	wrongPayload := good
	wrongPayload.Raw = &other
	rec = &recorder{TB: t}
	checkPoisonDeadLettered(rec, []deadletter.Record{wrongPayload}, "audit", b, b.marker)
	if len(rec.errs) != 1 {
		t.Errorf("a dead letter without the body: errors %v, want one", rec.errs)
	}
}
