package entra

import (
	"bytes"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/gen"
)

// BenchmarkScanner measures splitting a stream of Event Hubs bodies into
// records, the part of the hot path every byte of input goes through.
func BenchmarkScanner(b *testing.B) {
	var buf bytes.Buffer
	st, err := gen.Write(&buf, gen.Options{Records: 20000, PerBody: 100, SSPRShare: 0.02, Seed: 3}, false)
	if err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	n := 0
	for b.Loop() {
		sc := NewScanner(bytes.NewReader(data), 0)
		for {
			v, err := sc.Next()
			if err != nil {
				break
			}
			_ = v.Records(func(RawRecord) error { n++; return nil })
		}
	}
	if n != st.Records*b.N {
		b.Fatalf("%d records, want %d", n, st.Records*b.N)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
