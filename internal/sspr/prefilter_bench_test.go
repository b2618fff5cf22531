package sspr

import (
	"bytes"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/entra"
	"github.com/sspr-exporter/sspr-exporter/internal/gen"
)

// BenchmarkMayMatch measures the prefilter that every record of the stream
// goes through.
func BenchmarkMayMatch(b *testing.B) {
	var buf bytes.Buffer
	if _, err := gen.Write(&buf, gen.Options{Records: 5000, PerBody: 100, SSPRShare: 0.02, Seed: 3}, false); err != nil {
		b.Fatal(err)
	}
	var recs [][]byte
	sc := entra.NewBytesScanner(buf.Bytes(), 0)
	for {
		v, err := sc.Next()
		if err != nil {
			break
		}
		_ = v.Records(func(r entra.RawRecord) error { recs = append(recs, bytes.Clone(r.Data)); return nil })
	}
	cat, err := NewCatalog(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("anchors %q", cat.anchors)
	var scratch []byte
	b.SetBytes(int64(buf.Len()))
	b.ResetTimer()
	for b.Loop() {
		for _, r := range recs {
			cat.MayMatch(r, &scratch)
		}
	}
}
