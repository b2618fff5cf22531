package entra

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// kindOf names the error of a value or record for tests.
func kindOf(err error) string {
	var se *SyntaxError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrTooLarge):
		return "too-large"
	case errors.As(err, &se):
		return "syntax"
	case errors.Is(err, ErrBadEnvelope):
		return "bad-envelope"
	case errors.Is(err, ErrNotObject):
		return "not-object"
	case errors.Is(err, ErrTooDeep):
		return "too-deep"
	case errors.Is(err, ErrNoRecords):
		return "no-records"
	}
	return "other: " + err.Error()
}

// TestEnvelopeShapes: every element of every envelope array comes out, in
// order, as a record or as an error element.
func TestEnvelopeShapes(t *testing.T) {
	const A, B, C = `{"id":"a"}`, `{"id":"b"}`, `{"id":"c"}`
	type rec struct{ data, err string }
	// wrap puts s in n envelopes: the outermost is the value, the others
	// are opened one level deeper each.
	wrap := func(s string, n int) string {
		for range n {
			s = `{"records":[` + s + `]}`
		}
		return s
	}
	tests := []struct {
		name string
		in   string
		want []rec
	}{
		{"duplicate records arrays", `{"records":[` + A + `],"records":[` + B + `]}`, []rec{{A, ""}, {B, ""}}},
		{"records and value arrays", `{"records":[` + A + `],"value":[` + B + `]}`, []rec{{A, ""}, {B, ""}}},
		{"value then records", `{"value":[` + A + `],"x":1,"records":[` + B + `,` + C + `]}`, []rec{{A, ""}, {B, ""}, {C, ""}}},
		{"escaped key", `{"r\u0065cords":[` + A + `]}`, []rec{{A, ""}}},
		{"escaped value key", `{"va\u006Cue":[` + A + `],"x":1}`, []rec{{A, ""}}},
		{"capitalised Records", `{"Records":[` + A + `]}`, []rec{{A, ""}}},
		{"upper case VALUE", `{"VALUE":[` + A + `]}`, []rec{{A, ""}}},
		{"long s folds like encoding/json", `{"recordſ":[` + A + `]}`, []rec{{A, ""}}},
		{"nested envelope", `{"records":[{"records":[` + A + `,` + B + `]}]}`, []rec{{A, ""}, {B, ""}}},
		{"nested graph page", `{"records":[{"value":[` + A + `]},` + B + `]}`, []rec{{A, ""}, {B, ""}}},
		{"nested escaped and capitalised", `{"records":[{"R\u0045CORDS":[` + A + `]},{"Value":[` + B + `]}]}`, []rec{{A, ""}, {B, ""}}},
		{"envelope in array in envelope", `{"records":[[{"records":[` + A + `]},` + B + `]]}`, []rec{{A, ""}, {B, ""}}},
		{"envelope in envelope in array", `[{"records":[{"value":[` + A + `]}]},` + B + `]`, []rec{{A, ""}, {B, ""}}},
		{"arrays in a top-level array", `[[` + A + `,` + B + `],` + C + `]`, []rec{{A, ""}, {B, ""}, {C, ""}}},
		{"pretty nested", "{\n \"records\": [\n  {\n   \"Records\": [\n    " + A + "\n   ]\n  }\n ]\n}", []rec{{A, ""}}},
		{"scalars in envelopes", `{"records":[` + A + `,"s",null,{"value":[1]}]}`, []rec{{A, ""}, {`"s"`, "not-object"}, {`null`, "not-object"}, {`1`, "not-object"}}},
		{"odd member beside an array", `{"records":[` + A + `],"value":3}`, []rec{{A, ""}, {`3`, "bad-envelope"}}},
		{"object member beside an array", `{"records":{"id":"x"},"value":[` + B + `]}`, []rec{{`{"id":"x"}`, "bad-envelope"}, {B, ""}}},
		{"nested bad envelope", `{"records":[{"records":{"id":"x"}},` + A + `]}`, []rec{{`{"records":{"id":"x"}}`, "bad-envelope"}, {A, ""}}},
		{"nested scalar member leaves a record", `{"records":[{"records":"x","id":"s"},` + A + `]}`, []rec{{`{"records":"x","id":"s"}`, ""}, {A, ""}}},
		{"blanks around a nested key's colon", "{\"records\":[{\"value\" \n:\t\n [" + A + "]}]}", []rec{{A, ""}}},
		{"escaped quote before a key-length string", `{"records":[{"a":"x\"value","b":[1]}]}`, []rec{{`{"a":"x\"value","b":[1]}`, ""}}},
		{"key-like value is not a key", `[{"type":"records","n":1},{"n":"value"}]`, []rec{{`{"type":"records","n":1}`, ""}, {`{"n":"value"}`, ""}}},
		{"deeper keys are not envelopes", `{"records":[{"x":{"records":[` + A + `]}}]}`, []rec{{`{"x":{"records":[` + A + `]}}`, ""}}},
		{"empty arrays", `{"records":[],"value":[]}`, nil},
		{"nesting at the bound", wrap(A, maxOpenDepth+1), []rec{{A, ""}}},
		{"nesting beyond the bound", wrap(A, maxOpenDepth+2), []rec{{wrap(A, 1), "too-deep"}}},
	}
	for _, tt := range tests {
		for mode, mk := range readers(tt.in) {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				var got []rec
				for _, o := range drain(t, mk()) {
					got = append(got, rec{o.data, kindOf(o.err)})
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("got  %q\nwant %q", got, tt.want)
				}
			})
		}
	}
}

// envelopeKeys are spellings of the envelope keys that encoding/json
// would match to a field named records or value.
var envelopeKeys = []string{"records", "value", "Records", "VALUE", `r\u0065cords`, `\u0076alue`, "recordſ", "vAlUe"}

// genNode writes a random element and appends to want what the scanner
// must hand out for it: records by id, errors by kind.
type genState struct {
	rng  *rand.Rand
	next int
	want []string
}

func (g *genState) ws(b *strings.Builder) {
	switch g.rng.IntN(6) {
	case 0:
		b.WriteString("\n  ")
	case 1:
		b.WriteString(" ")
	}
}

func (g *genState) record(b *strings.Builder) {
	g.next++
	id := fmt.Sprintf("r%d", g.next)
	fmt.Fprintf(b, `{"id":"%s",`, id)
	g.ws(b)
	b.WriteString(`"properties":{"records":[1,{"value":"x"}],"n":[{},[]]},"note":"records"}`)
	g.want = append(g.want, id)
}

// element writes an array element: a record, a scalar, an array or an
// envelope. depth counts the containers opened above it.
func (g *genState) element(b *strings.Builder, depth int) {
	k := g.rng.IntN(10)
	if depth >= maxOpenDepth-1 {
		k %= 5 // no more nesting
	}
	switch {
	case k < 4:
		g.record(b)
	case k == 4:
		b.WriteString([]string{`1`, `"s"`, `null`, `true`, `-2.5e3`}[g.rng.IntN(5)])
		g.want = append(g.want, "!not-object")
	case k < 7:
		g.nested(func() { g.array(b, depth+1) })
	default:
		g.nested(func() { g.envelope(b, depth+1) })
	}
}

// nested writes an array or envelope element; one that holds nothing to
// hand out is an error element of its own.
func (g *genState) nested(write func()) {
	before := len(g.want)
	write()
	if len(g.want) == before {
		g.want = append(g.want, "!no-records")
	}
}

func (g *genState) array(b *strings.Builder, depth int) {
	b.WriteByte('[')
	for i, n := 0, g.rng.IntN(4); i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		g.ws(b)
		g.element(b, depth)
	}
	g.ws(b)
	b.WriteByte(']')
}

func (g *genState) envelope(b *strings.Builder, depth int) {
	b.WriteByte('{')
	n := 1 + g.rng.IntN(3)
	arrays := 0
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		g.ws(b)
		switch g.rng.IntN(5) {
		case 0: // a member that is no envelope
			b.WriteString(`"@odata.nextLink":"x"`)
		case 1: // an envelope member that is not an array
			if arrays > 0 || i < n-1 {
				fmt.Fprintf(b, `"%s":{"id":"bad"}`, envelopeKeys[g.rng.IntN(len(envelopeKeys))])
				g.want = append(g.want, "!bad-envelope")
				break
			}
			fallthrough
		default:
			fmt.Fprintf(b, `"%s":`, envelopeKeys[g.rng.IntN(len(envelopeKeys))])
			g.array(b, depth)
			arrays++
		}
	}
	if arrays == 0 { // keep it an envelope: only then are bad members elements
		fmt.Fprintf(b, `,"%s":`, envelopeKeys[g.rng.IntN(len(envelopeKeys))])
		g.array(b, depth)
	}
	g.ws(b)
	b.WriteByte('}')
}

// TestEnvelopeProperty: in random nestings of envelopes and arrays, every
// record comes out once, in order, and every other element is an error:
// records handed out plus error elements equal the elements written.
func TestEnvelopeProperty(t *testing.T) {
	for seed := range uint64(300) {
		g := &genState{rng: rand.New(rand.NewPCG(seed, 99))}
		var b strings.Builder
		lines := 1 + g.rng.IntN(3)
		for range lines {
			if g.rng.IntN(2) == 0 {
				g.envelope(&b, 0)
			} else {
				g.array(&b, 0)
			}
			b.WriteByte('\n')
		}
		in := b.String()
		for mode, mk := range readers(in) {
			var got []string
			records, errs := 0, 0
			for _, o := range drain(t, mk()) {
				if o.err != nil {
					errs++
					got = append(got, "!"+kindOf(o.err))
					continue
				}
				records++
				id, ok := strings.CutPrefix(o.data, `{"id":"`)
				if !ok {
					t.Fatalf("seed %d %s: record %q is not one written", seed, mode, o.data)
				}
				got = append(got, id[:strings.IndexByte(id, '"')])
			}
			if fmt.Sprint(got) != fmt.Sprint(g.want) {
				t.Fatalf("seed %d %s:\ninput %s\ngot  %q\nwant %q", seed, mode, in, got, g.want)
			}
			if records+errs != len(g.want) {
				t.Fatalf("seed %d %s: %d records + %d errors, %d elements written", seed, mode, records, errs, len(g.want))
			}
		}
	}
}
