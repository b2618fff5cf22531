package pipeline

import (
	"bytes"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/deadletter"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// FuzzMessage checks that a message never vanishes: it yields records or
// a dead letter, and every dead letter's payload is a part of the message
// (or, truncated, a prefix of one).
func FuzzMessage(f *testing.F) {
	for _, s := range []string{"", " \n", "[]", `{"records":[]}`, `{"records":[` + record("a") + `,"x",[]]}`, record("b") + "\nbroken{\n" + record("c"), "\xff\xfe{", `{"records":{}}`} {
		f.Add([]byte(s))
	}
	d := testDecoder(f)
	d.MaxBodyBytes = 4096
	f.Fuzz(func(t *testing.T, data []byte) {
		res := d.Decode([]stream.Body{{Data: data, Pos: ehPos()}})
		if res.Counts.Records == 0 && len(res.DeadLetters) == 0 {
			t.Fatalf("message %q vanished", data)
		}
		for _, r := range res.DeadLetters {
			p, err := r.Payload()
			if err != nil || !bytes.Contains(data, p) {
				t.Fatalf("dead letter payload %q is not part of the message %q (%v)", p, data, err)
			}
			if r.Reason == "" || !r.Reason.Known() {
				t.Fatalf("dead letter without a known reason: %+v", r)
			}
		}
	})
}

// FuzzRedrive checks that a re-driven line always comes out as something:
// a document, a record counted, or a dead letter.
func FuzzRedrive(f *testing.F) {
	for _, s := range []string{
		`{"dead_letter":1,"time":"x","stage":"decode","source":{"kind":"file","file":"a","line":2},"error":"e","raw":"[]"}`,
		`{"dead_letter":1,"time":"x","stage":"sink","source":{"kind":"file"},"error":"e","raw":"{}"}`,
		`{"dead_letter":1,"time":"x","stage":"decode","source":{},"error":"e","raw_base64":"!!"}`,
		`{"dead_letter":1,"time":"x","stage":"decode","source":{},"error":"e","raw":"x","truncated":true,"size":9,"sha256":"00"}`,
		`{"dead_letter":2,"stage":"decode"}`,
		`{"dead_letter":1,"stage":"decode","source":{},"error":"e","raw":"{\"dead_letter\":1,\"stage\":\"sink\",\"raw\":\"\"}"}`,
	} {
		f.Add([]byte(s))
	}
	d := testDecoder(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if !deadletter.LooksLike(data) {
			return
		}
		res := Redriver{Decoder: &d}.Decode([]stream.Body{{Data: data, Pos: stream.Position{Kind: "file", File: "dl", Line: 1}, Form: stream.FormRecord}})
		if res.Counts.Records == 0 && len(res.DeadLetters) == 0 {
			t.Fatalf("re-driven line %q vanished", data)
		}
	})
}
