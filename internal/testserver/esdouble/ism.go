package esdouble

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// ism serves the part of OpenSearch's Index State Management API the
// OpenSearch output uses: policies (GET, PUT with optimistic concurrency),
// and putting indices under a policy (add, change_policy). Policies with an
// ism_template manage the matching indices created after them.
func (d *Double) ism(w http.ResponseWriter, r *http.Request, p []string, body []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case len(p) == 1 && p[0] == "policies" && r.Method == http.MethodGet:
		list := []any{}
		for _, id := range sortedKeys(d.policiesISM) {
			list = append(list, d.ismPolicyDoc(id, d.policiesISM[id]))
		}
		writeJSON(w, 200, map[string]any{"policies": list, "total_policies": len(list)})
	case len(p) == 2 && p[0] == "policies" && r.Method == http.MethodGet:
		s := d.policiesISM[p[1]]
		if s == nil {
			writeError(w, 404, "status_exception", "Policy not found")
			return
		}
		writeJSON(w, 200, d.ismPolicyDoc(p[1], s))
	case len(p) == 2 && p[0] == "policies" && r.Method == http.MethodPut:
		d.putISMPolicy(w, r, p[1], body)
	case len(p) == 2 && (p[0] == "add" || p[0] == "change_policy") && r.Method == http.MethodPost:
		d.ismApply(w, p[0], p[1], body)
	default:
		noHandler(w, r)
	}
}

func (d *Double) ismPolicyDoc(id string, s *stored) map[string]any {
	pol := map[string]any{"policy_id": id, "last_updated_time": s.modified.UnixMilli(), "schema_version": 21}
	for k, v := range s.body {
		pol[k] = v
	}
	return map[string]any{"_id": id, "_version": s.version, "_seq_no": s.version - 1, "_primary_term": 1, "policy": pol}
}

func (d *Double) putISMPolicy(w http.ResponseWriter, r *http.Request, id string, body []byte) {
	var v struct {
		Policy map[string]any `json:"policy"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Policy == nil {
		writeError(w, 400, "illegal_argument_exception", "Invalid field: policy is required")
		return
	}
	for _, k := range []string{"description", "default_state", "states"} {
		if _, ok := v.Policy[k]; !ok {
			writeError(w, 400, "illegal_argument_exception", k+" is null")
			return
		}
	}
	s := d.policiesISM[id]
	q := r.URL.Query()
	seq, hasSeq := q.Get("if_seq_no"), q.Get("if_primary_term") != ""
	now := time.Now().UTC()
	status := http.StatusOK
	switch {
	case s == nil && !hasSeq:
		s = &stored{created: now}
		d.policiesISM[id] = s
		status = http.StatusCreated
	case s == nil:
		writeError(w, 404, "status_exception", "Policy not found")
		return
	case !hasSeq || seq != strconv.FormatInt(s.version-1, 10):
		writeError(w, 409, "version_conflict_engine_exception",
			fmt.Sprintf("[%s]: version conflict, required seqNo [%s], primary term [1]. current document has seqNo [%d] and primary term [1]", id, seq, s.version-1))
		return
	}
	s.body, s.modified = v.Policy, now
	s.version++
	d.stats.AdminPuts++
	doc := d.ismPolicyDoc(id, s)
	doc["policy"] = map[string]any{"policy": doc["policy"]}
	writeJSON(w, status, doc)
}

// ismApply runs add or change_policy on the indices of pattern.
func (d *Double) ismApply(w http.ResponseWriter, api, pattern string, body []byte) {
	var req struct {
		PolicyID string `json:"policy_id"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.PolicyID == "" {
		writeError(w, 400, "illegal_argument_exception", "Missing policy_id")
		return
	}
	if d.policiesISM[req.PolicyID] == nil {
		writeError(w, 404, "status_exception", "Could not find policy with id ["+req.PolicyID+"]")
		return
	}
	updated := 0
	failed := []any{}
	for _, ix := range d.matchIndices(pattern) {
		_, managed := d.managed[ix.name]
		switch {
		case api == "add" && managed:
			failed = append(failed, map[string]string{"index_name": ix.name, "index_uuid": ix.uuid,
				"reason": "This index already has a policy, use the update policy API to update index policies"})
		case api == "change_policy" && !managed:
			failed = append(failed, map[string]string{"index_name": ix.name, "index_uuid": ix.uuid, "reason": "This index is not being managed"})
		default:
			d.managed[ix.name] = req.PolicyID
			d.stats.ISMApplied++
			updated++
		}
	}
	writeJSON(w, 200, map[string]any{"updated_indices": updated, "failures": len(failed) > 0, "failed_indices": failed})
}

// manageNew puts an index created now under the policy whose ism_template
// matches it with the highest priority.
func (d *Double) manageNew(index string) {
	best, bestPrio := "", -1.0
	for _, id := range sortedKeys(d.policiesISM) {
		tpls, _ := d.policiesISM[id].body["ism_template"].([]any)
		for _, t := range tpls {
			tm, _ := t.(map[string]any)
			pats, _ := tm["index_patterns"].([]any)
			prio, _ := tm["priority"].(float64)
			for _, p := range pats {
				if ps, _ := p.(string); globMatch(ps, index) && prio > bestPrio {
					best, bestPrio = id, prio
				}
			}
		}
	}
	if best != "" {
		d.managed[index] = best
	}
}

// ISMPolicy returns a stored ISM policy and its version (0 when absent).
func (d *Double) ISMPolicy(id string) (map[string]any, int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.policiesISM[id]; s != nil {
		return s.body, s.version
	}
	return nil, 0
}

// ManagedBy returns the ISM policy that manages an index, or "".
func (d *Double) ManagedBy(index string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.managed[index]
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
