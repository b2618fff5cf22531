package sspr

// ReasonEntry is one row of the reason table, for the tests.
type ReasonEntry struct{ Reason, Step, Method string }

// ReasonTable returns the reason table in its source order: Microsoft's
// documented reasons, then the observed ones.
func ReasonTable() []ReasonEntry {
	var out []ReasonEntry
	for _, table := range [][]reasonEntry{documentedReasons, observedReasons} {
		for _, r := range table {
			out = append(out, ReasonEntry{r.reason, r.step, r.method})
		}
	}
	return out
}

// Steps returns every step value the table gives.
func Steps() []string { return distinct(func(r ReasonEntry) string { return r.Step }) }

// Methods returns every method value the table gives.
func Methods() []string { return distinct(func(r ReasonEntry) string { return r.Method }) }

func distinct(f func(ReasonEntry) string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range ReasonTable() {
		if v := f(r); v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
