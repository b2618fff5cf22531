package e2e

import (
	"fmt"
	"testing"
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
