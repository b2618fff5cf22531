// Command sspr-gen writes a synthetic Entra diagnostic stream for load tests
// and benchmarks: Event Hubs bodies, one per line, of about 1.2 KB audit and
// sign-in records, a small share of them SSPR events.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/sspr-exporter/sspr-exporter/internal/gen"
)

func main() {
	records := flag.Int("records", 200000, "records to write")
	perBody := flag.Int("per-body", 100, "records per body")
	share := flag.Float64("sspr-share", 0.02, "share of SSPR records")
	seed := flag.Uint64("seed", 1, "random seed (same seed, same stream)")
	poison := flag.Int("poison-every", 0, "make every Nth body a truncated one (0 = none)")
	out := flag.String("o", "-", "output file ('-' = stdout)")
	flag.Parse()

	w := os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sspr-gen:", err)
			os.Exit(1)
		}
		defer f.Close()
		w = f
	}
	st, err := gen.Write(w, gen.Options{Records: *records, PerBody: *perBody, SSPRShare: *share, Seed: *seed, PoisonEvery: *poison}, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sspr-gen:", err)
		os.Exit(1)
	}
	st.SSPRIDs = nil
	b, _ := json.Marshal(st)
	fmt.Fprintln(os.Stderr, string(b))
}
