// Command sspr-gen writes a synthetic Entra diagnostic stream for load tests
// and benchmarks: Event Hubs bodies, one per line, of about 1.2 KB audit and
// sign-in records, a small share of them SSPR events.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"strings"

	"github.com/sspr-exporter/sspr-exporter/internal/gen"
	"github.com/sspr-exporter/sspr-exporter/internal/gen/scenario"
)

func main() {
	records := flag.Int("records", 200000, "records to write")
	perBody := flag.Int("per-body", 100, "records per body")
	share := flag.Float64("sspr-share", 0.02, "share of SSPR records")
	seed := flag.Uint64("seed", 1, "random seed (same seed, same stream)")
	poison := flag.Int("poison-every", 0, "cut every Nth body short, as a truncated upload (0 = none, else at least 2); the stats count the good bodies only")
	out := flag.String("o", "-", "output file ('-' = stdout)")
	scn := flag.String("scenario", "", "write a labelled detection scenario instead: "+strings.Join(scenario.Names(), ", "))
	days := flag.Int("days", 0, "scenario: days of traffic (0 = 28, 30 for month)")
	users := flag.Int("users", 0, "scenario: accounts of the tenant (0 = 3000)")
	labels := flag.String("labels", "", "scenario: write the injected attacks' labels (JSON) to this file")
	format := flag.String("format", "ecs", "scenario: ecs (documents as the file output writes them) or entra (the raw audit records)")
	flag.Parse()
	if *scn != "" {
		if err := writeScenario(*out, *labels, *format, scenario.Options{Scenario: *scn, Days: *days, Users: *users, Seed: *seed}); err != nil {
			fmt.Fprintln(os.Stderr, "sspr-gen:", err)
			os.Exit(1)
		}
		return
	}
	if *poison == 1 {
		fmt.Fprintln(os.Stderr, "sspr-gen: -poison-every must be 0 or at least 2 (1 would cut every body)")
		os.Exit(2)
	}

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
