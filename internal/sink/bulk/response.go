package bulk

import (
	"encoding/json"
	"fmt"
	"io"
)

// bulkTop is a _bulk answer with its items left undecoded.
type bulkTop struct {
	Errors bool            `json:"errors"`
	Items  json.RawMessage `json:"items"`
}

// bulkItems are the items of a _bulk answer that has errors; they are
// decoded by action name without a map per item.
type bulkItems []struct {
	Create *bulkItem `json:"create"`
	Index  *bulkItem `json:"index"`
}

type bulkItem struct {
	Status int          `json:"status"`
	Error  *engineError `json:"error"`
}

// readAnswer reads a bulk answer: every item's fate, in order.
func (s *Sink) readAnswer(body io.Reader, pending []item) attemptResult {
	rb := s.getBuf()
	defer s.bufs.Put(rb)
	var top bulkTop
	_, err := rb.ReadFrom(body)
	if err == nil {
		err = json.Unmarshal(rb.Bytes(), &top)
	}
	if err != nil {
		s.health.fail(kindUnavailable, s.eng.Name+" bulk answer unreadable: "+s.red.Redact(err.Error()))
		return attemptResult{retry: pending}
	}
	if !top.Errors && countElements(top.Items) == len(pending) {
		// Every action succeeded: no need to look at the items one by one.
		s.stats.created.Add(int64(len(pending)))
		s.health.ok()
		return attemptResult{progress: true}
	}
	var items bulkItems
	if err := json.Unmarshal(top.Items, &items); err != nil {
		s.health.fail(kindUnavailable, s.eng.Name+" bulk answer unreadable: "+s.red.Redact(err.Error()))
		return attemptResult{retry: pending}
	}
	if len(items) != len(pending) {
		s.health.fail(kindUnavailable, fmt.Sprintf("%s bulk answer has %d items for %d actions", s.eng.Name, len(items), len(pending)))
		return attemptResult{retry: pending}
	}
	return s.itemResults(items, pending)
}

// countElements counts the elements of a JSON array already known to be
// valid, without decoding them.
func countElements(arr []byte) int {
	n, depth, inString, escaped := 0, 0, false, false
	for _, c := range arr {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
			if depth == 1 && n == 0 {
				n = 1
			}
		case c == '[' || c == '{':
			if depth == 1 && n == 0 {
				n = 1
			}
			depth++
		case c == ']' || c == '}':
			depth--
		case c == ',' && depth == 1:
			n++
		case depth == 1 && n == 0 && c > ' ':
			n = 1 // a number, true, false or null
		}
	}
	return n
}
