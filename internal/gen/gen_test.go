package gen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestPoisonStats: with PoisonEvery, every Nth body is cut short (not
// JSON) and holds no SSPR record; the stats count only the good bodies'
// records and SSPR events.
func TestPoisonStats(t *testing.T) {
	var buf bytes.Buffer
	st, err := Write(&buf, Options{Records: 3000, PerBody: 50, SSPRShare: 0.1, Seed: 4, PoisonEvery: 4}, true)
	if err != nil {
		t.Fatal(err)
	}
	bodies, poison, records, sspr := 0, 0, 0, 0
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		bodies++
		line := sc.Bytes()
		if !json.Valid(line) {
			poison++
			if bodies%4 != 0 || bytes.Contains(line, []byte("Self-service Password Management")) {
				t.Errorf("body %d: cut short out of turn, or holds an SSPR record", bodies)
			}
			continue
		}
		var b struct{ Records []json.RawMessage }
		if err := json.Unmarshal(line, &b); err != nil {
			t.Fatal(err)
		}
		records += len(b.Records)
		for _, r := range b.Records {
			if bytes.Contains(r, []byte(`"loggedByService":"Self-service Password Management"`)) {
				sspr++
			}
		}
	}
	n := 0
	for _, v := range st.ByAction {
		n += v
	}
	if bodies != st.Bodies || poison != st.Poison || records != st.Records || sspr != st.SSPR || n != st.SSPR || len(st.SSPRIDs) != st.SSPR {
		t.Errorf("read %d bodies, %d cut, %d records, %d SSPR; stats %+v (by action %d, ids %d)", bodies, poison, records, sspr, st, n, len(st.SSPRIDs))
	}
	if st.Records != 3000 || st.Poison == 0 {
		t.Errorf("stats %+v", st)
	}
}

// failAfter fails writes once n bytes were written.
type failAfter struct{ n int }

var errFull = errors.New("test writer full")

func (w *failAfter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, errFull
	}
	return len(p), nil
}

// TestPoisonEveryOne: cutting every body would never reach the records
// asked for; Write refuses it instead of writing forever.
func TestPoisonEveryOne(t *testing.T) {
	_, err := Write(&failAfter{n: 64 << 20}, Options{Records: 10, PoisonEvery: 1}, false)
	if err == nil || errors.Is(err, errFull) || !strings.Contains(err.Error(), "PoisonEvery") {
		t.Fatalf("Write with PoisonEvery 1: %v, want it refused", err)
	}
}
