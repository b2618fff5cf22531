package stream

import "maps"

// Counts is what became of the records read: one batch's tally as the
// pipeline makes it, the sum the metrics export, and a run's total (replay
// prints it as its summary).
type Counts struct {
	Records   int64            `json:"records"`    // records read, whatever became of them
	SSPR      int64            `json:"sspr"`       // SSPR documents emitted
	ByAction  map[string]int64 `json:"by_action"`  // SSPR documents by event.action
	ByOutcome map[string]int64 `json:"by_outcome"` // SSPR documents by event.outcome
	Dropped   int64            `json:"dropped"`    // not SSPR, including Unsupported
	// Unsupported counts SSPR activities in the retired preview schema.
	Unsupported int64 `json:"unsupported"`
	// DeadLettered counts the dead letters written, from decoding and
	// from the sinks' rejections.
	DeadLettered int64 `json:"dead_lettered"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Records += o.Records
	c.SSPR += o.SSPR
	c.Dropped += o.Dropped
	c.Unsupported += o.Unsupported
	c.DeadLettered += o.DeadLettered
	c.ByAction = addKeyed(c.ByAction, o.ByAction)
	c.ByOutcome = addKeyed(c.ByOutcome, o.ByOutcome)
}

func addKeyed(dst, src map[string]int64) map[string]int64 {
	for k, v := range src {
		if dst == nil {
			dst = map[string]int64{}
		}
		dst[k] += v
	}
	return dst
}

// Clone returns a copy of c that shares no map with it; its maps are never
// nil, so that they encode as {} rather than null.
func (c Counts) Clone() Counts {
	c.ByAction, c.ByOutcome = cloneKeyed(c.ByAction), cloneKeyed(c.ByOutcome)
	return c
}

func cloneKeyed(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return maps.Clone(m)
}
