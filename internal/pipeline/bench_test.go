package pipeline

import (
	"bytes"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/gen"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

func benchBodies(b *testing.B, records int) ([]stream.Body, gen.Stats) {
	b.Helper()
	var buf bytes.Buffer
	st, err := gen.Write(&buf, gen.Options{Records: records, PerBody: 100, SSPRShare: 0.02, Seed: 1}, false)
	if err != nil {
		b.Fatal(err)
	}
	var bodies []stream.Body
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte{'\n'}) {
		bodies = append(bodies, stream.Body{Data: line, Pos: stream.Position{Kind: "eventhubs", Partition: "0"}})
	}
	return bodies, st
}

// BenchmarkDecodeClassifyNormalizeEncode measures the hot path per record:
// splitting bodies into records, the prefilter, decoding candidates,
// normalizing SSPR events and encoding the documents as JSON.
func BenchmarkDecodeClassifyNormalizeEncode(b *testing.B) {
	bodies, st := benchBodies(b, 20000)
	cat, err := sspr.NewCatalog(nil)
	if err != nil {
		b.Fatal(err)
	}
	d := Decoder{Catalog: cat, Now: time.Now}
	var buf []byte
	b.SetBytes(st.Bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res := d.Decode(bodies)
		if res.Counts.SSPR != int64(st.SSPR) {
			b.Fatalf("sspr %d, want %d", res.Counts.SSPR, st.SSPR)
		}
		for i := range res.Docs {
			buf = append(res.Docs[i].AppendJSON(buf[:0]), '\n')
		}
	}
	b.ReportMetric(float64(st.Records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkValidDocument is the cost of checking one re-driven sink
// document against the document schema (replay of sink dead letters only).
func BenchmarkValidDocument(b *testing.B) {
	bodies, _ := benchBodies(b, 2000)
	cat, err := sspr.NewCatalog(nil)
	if err != nil {
		b.Fatal(err)
	}
	res := (&Decoder{Catalog: cat, Now: time.Now}).Decode(bodies)
	if len(res.Docs) == 0 {
		b.Fatal("no documents")
	}
	doc := res.Docs[0].AppendJSON(nil)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ValidDocument(doc); err != nil {
			b.Fatal(err)
		}
	}
}
