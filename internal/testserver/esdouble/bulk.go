package esdouble

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// bulkItem is one entry of a _bulk response; field order follows the node's.
type bulkItem struct {
	Index       string          `json:"_index"`
	ID          string          `json:"_id"`
	Version     int64           `json:"_version,omitempty"`
	Result      string          `json:"result,omitempty"`
	Shards      *map[string]int `json:"_shards,omitempty"`
	SeqNo       *int64          `json:"_seq_no,omitempty"`
	PrimaryTerm int64           `json:"_primary_term,omitempty"`
	Status      int             `json:"status"`
	Error       *errorCause     `json:"error,omitempty"`
}

type bulkResponse struct {
	Errors bool                  `json:"errors"`
	Took   int64                 `json:"took"`
	Items  []map[string]bulkItem `json:"items"`
}

type actionMeta struct {
	Index string `json:"_index"`
	ID    string `json:"_id"`
}

func (d *Double) bulk(w http.ResponseWriter, r *http.Request, defIndex string, body []byte) {
	start := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failCount > 0 {
		d.failCount--
		d.stats.FailedRequests++
		typ, reason := statusType(d.failStatus)
		writeError(w, d.failStatus, d.engineType(typ), reason)
		return
	}
	if d.maxContent > 0 && len(body) > d.maxContent {
		d.stats.FailedRequests++
		// A node refuses an oversized body before parsing it, with neither
		// a body nor headers.
		w.Header().Del("Content-Type")
		w.Header().Del("X-Elastic-Product")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	if len(body) == 0 {
		writeError(w, 400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
		return
	}
	if body[len(body)-1] != '\n' {
		writeError(w, 400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
		return
	}
	d.stats.BulkRequests++
	if len(body) > d.stats.MaxBulkBytes {
		d.stats.MaxBulkBytes = len(body)
	}

	if d.fastAccept && d.failCount == 0 && d.itemHook == nil && len(d.itemFaults) == 0 {
		d.fastBulk(w, defIndex, body, r.URL.Query().Get("filter_path") != "")
		return
	}
	acts, perr := parseBulk(body, defIndex)
	if perr != "" {
		writeError(w, 400, "illegal_argument_exception", perr)
		return
	}
	if verr := validateBulk(acts); verr != "" {
		writeError(w, 400, "action_request_validation_exception", verr)
		return
	}
	resp := bulkResponse{Items: []map[string]bulkItem{}}
	for _, a := range acts {
		item := d.applyItem(a.op, a.meta, a.src)
		for e := item.Error; e != nil; e = e.CausedBy {
			e.Type = d.engineType(e.Type)
		}
		d.stats.BulkItems++
		switch {
		case item.Status == 201:
			d.stats.Created++
		case item.Error != nil && item.Error.Type == "version_conflict_engine_exception":
			d.stats.Conflicts++
		}
		if item.Error != nil {
			resp.Errors = true
			if item.Error.Type != "version_conflict_engine_exception" {
				d.stats.ItemErrors++
			}
		}
		resp.Items = append(resp.Items, map[string]bulkItem{a.op: item})
	}
	resp.Took = time.Since(start).Milliseconds()
	writeJSON(w, 200, resp)
}

// bulkAction is one parsed action of a _bulk body.
type bulkAction struct {
	op   string
	meta actionMeta
	src  []byte
}

// parseBulk reads every action of a body before any is run, as a node's
// bulk parser does; its error names the action's line, counted from 1.
func parseBulk(body []byte, defIndex string) ([]bulkAction, string) {
	var acts []bulkAction
	line := 0
	for len(body) > 0 {
		var act []byte
		act, body = nextLine(body)
		line++
		if len(bytes.TrimSpace(act)) == 0 {
			continue
		}
		var a map[string]actionMeta
		if err := json.Unmarshal(act, &a); err != nil || len(a) != 1 {
			return nil, fmt.Sprintf("Malformed action/metadata line [%d], expected START_OBJECT or END_OBJECT but found [VALUE_STRING]", line)
		}
		var ba bulkAction
		for k, v := range a {
			ba.op, ba.meta = k, v
		}
		switch ba.op {
		case "create", "index", "delete", "update":
		default:
			return nil, fmt.Sprintf("Malformed action/metadata line [%d], expected field [create], [delete], [index] or [update] but found [%s]", line, ba.op)
		}
		if ba.meta.Index == "" {
			ba.meta.Index = defIndex
		}
		if ba.op != "delete" {
			if len(body) == 0 {
				return nil, "The bulk request must be terminated by a newline [\\n]"
			}
			ba.src, body = nextLine(body)
			line++
		}
		acts = append(acts, ba)
	}
	return acts, ""
}

// openSearchTypes are OpenSearch's names of the error types that
// Elasticsearch renamed after the fork.
var openSearchTypes = map[string]string{
	"document_parsing_exception":      "mapper_parsing_exception",
	"es_rejected_execution_exception": "rejected_execution_exception",
}

// engineType is the error type t as the double's engine names it.
func (d *Double) engineType(t string) string {
	if o, ok := openSearchTypes[t]; ok && d.opts.OpenSearch {
		return o
	}
	return t
}

// MaxIDBytes is Elasticsearch's limit on an _id, in bytes of UTF-8.
const MaxIDBytes = 512

// validateBulk returns what BulkRequest.validate reports: every item's
// validation errors, numbered, in one message ("" when there are none).
// Any of them refuses the whole request.
func validateBulk(acts []bulkAction) string {
	var errs []string
	if len(acts) == 0 {
		errs = append(errs, "no requests added")
	}
	for _, a := range acts {
		if a.meta.Index == "" {
			errs = append(errs, "index is missing")
		}
		if n := len(a.meta.ID); n > MaxIDBytes {
			errs = append(errs, fmt.Sprintf("id [%s] is too long, must be no longer than %d bytes but was: %d", a.meta.ID, MaxIDBytes, n))
		}
	}
	if len(errs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("Validation Failed: ")
	for i, e := range errs {
		fmt.Fprintf(&b, "%d: %s;", i+1, e)
	}
	return b.String()
}

func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	return b[:i], b[i+1:]
}

func (d *Double) itemError(meta actionMeta, uuid string, status int, typ, reason string) bulkItem {
	return bulkItem{
		Index: meta.Index, ID: meta.ID, Status: status,
		Error: &errorCause{Type: typ, Reason: reason, IndexUUID: uuid, Shard: "0", Index: meta.Index},
	}
}

func (d *Double) applyItem(op string, meta actionMeta, src []byte) bulkItem {
	if faults := d.itemFaults[meta.ID]; len(faults) > 0 {
		d.itemFaults[meta.ID] = faults[1:]
		return d.injected(meta, faults[0])
	}
	if d.itemHook != nil {
		if st := d.itemHook(op, meta.Index, meta.ID); st != 0 {
			return d.injected(meta, st)
		}
	}
	if d.fastAccept && (op == "create" || op == "index") {
		d.seqNo++
		seq := d.seqNo
		return bulkItem{Index: meta.Index, ID: meta.ID, Version: 1, Result: "created",
			Shards: &map[string]int{"total": 2, "successful": 1, "failed": 0}, SeqNo: &seq, PrimaryTerm: 1, Status: 201}
	}
	if err := validIndexName(meta.Index); err != "" {
		return bulkItem{Index: meta.Index, ID: meta.ID, Status: 400,
			Error: &errorCause{Type: "invalid_index_name_exception", Reason: "Invalid index name [" + meta.Index + "], " + err, IndexUUID: "_na_", Index: meta.Index}}
	}
	if d.closedIndices[meta.Index] {
		return d.itemError(meta, "_na_", 400, "index_closed_exception", "closed")
	}
	if d.readOnly[meta.Index] {
		return d.itemError(meta, "_na_", 403, "cluster_block_exception",
			"index ["+meta.Index+"] blocked by: [FORBIDDEN/8/index write (api)];")
	}
	ix := d.indices[meta.Index]
	if ix == nil {
		if d.noAutoCreate {
			return bulkItem{Index: meta.Index, ID: meta.ID, Status: 404,
				Error: &errorCause{Type: "index_not_found_exception", Reason: "no such index [" + meta.Index + "]", IndexUUID: "_na_", Index: meta.Index}}
		}
		ix = &index{name: meta.Index, uuid: d.newUUID(), docs: map[string]json.RawMessage{}, mapping: d.resolveMapping(meta.Index)}
		d.indices[meta.Index] = ix
		if d.opts.ISM {
			d.manageNew(meta.Index)
		}
	}
	if op == "delete" || op == "update" {
		return d.itemError(meta, ix.uuid, 400, "illegal_argument_exception", "the double supports only create and index actions")
	}
	id := meta.ID
	if id == "" {
		id = fmt.Sprintf("auto-%d", d.seqNo+1)
	}
	if _, exists := ix.docs[id]; exists && op == "create" {
		return d.itemError(actionMeta{Index: meta.Index, ID: id}, ix.uuid, 409, "version_conflict_engine_exception",
			"["+id+"]: version conflict, document already exists (current version [1])")
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil || doc == nil {
		return d.itemError(actionMeta{Index: meta.Index, ID: id}, ix.uuid, 400, "document_parsing_exception",
			"[1:1] failed to parse: Unexpected character: was expecting a JSON object")
	}
	if ix.mapping != nil {
		if ce := checkObject("", ix.mapping, dynamicOf(ix.mapping, "true"), doc, id); ce != nil {
			return bulkItem{Index: meta.Index, ID: id, Status: 400, Error: ce}
		}
	}
	_, existed := ix.docs[id]
	ix.docs[id] = append(json.RawMessage(nil), src...)
	if !existed {
		ix.order = append(ix.order, id)
	}
	d.seqNo++
	seq := d.seqNo
	result, status := "created", 201
	if existed {
		result, status = "updated", 200
	}
	return bulkItem{Index: meta.Index, ID: id, Version: 1, Result: result,
		Shards: &map[string]int{"total": 2, "successful": 1, "failed": 0}, SeqNo: &seq, PrimaryTerm: 1, Status: status}
}

func (d *Double) injected(meta actionMeta, status int) bulkItem {
	typ, reason := statusType(status)
	if status == 403 {
		typ, reason = "cluster_block_exception", "index ["+meta.Index+"] blocked by: [FORBIDDEN/8/index write (api)];"
	}
	if status == 429 {
		reason = "rejected execution of primary operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, primary_operation_bytes=1024, max_coordinating_and_primary_bytes=1024]"
	}
	uuid := "_na_"
	if ix := d.indices[meta.Index]; ix != nil {
		uuid = ix.uuid
	}
	return d.itemError(meta, uuid, status, typ, reason)
}

func validIndexName(n string) string {
	switch {
	case n != strings.ToLower(n):
		return "must be lowercase"
	case strings.ContainsAny(n, `\/*?"<>| ,#:`):
		return `must not contain the following characters [ , ", *, \, <, |, ,, >, /, ?]`
	case strings.HasPrefix(n, "_") || strings.HasPrefix(n, "-") || strings.HasPrefix(n, "+"):
		return "must not start with '_', '-', or '+'"
	}
	return ""
}

// resolveMapping composes the mappings of the highest-priority index
// template matching name, as a node does when it creates the index.
func (d *Double) resolveMapping(name string) map[string]any {
	var best *stored
	var bestPrio float64 = -1
	names := make([]string, 0, len(d.templates))
	for n := range d.templates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := d.templates[n]
		pats, _ := t.body["index_patterns"].([]any)
		if s, ok := t.body["index_patterns"].(string); ok {
			pats = []any{s}
		}
		for _, p := range pats {
			ps, _ := p.(string)
			if globMatch(ps, name) {
				prio, _ := t.body["priority"].(float64)
				if prio > bestPrio {
					best, bestPrio = t, prio
				}
			}
		}
	}
	if best == nil {
		return nil
	}
	merged := map[string]any{}
	comps, _ := best.body["composed_of"].([]any)
	for _, c := range comps {
		cn, _ := c.(string)
		if ct := d.components[cn]; ct != nil {
			mergeMapping(merged, mappingOf(ct.body))
		}
	}
	mergeMapping(merged, mappingOf(best.body))
	if len(merged) == 0 {
		return nil
	}
	return merged
}

func mappingOf(body map[string]any) map[string]any {
	tpl, _ := body["template"].(map[string]any)
	m, _ := tpl["mappings"].(map[string]any)
	return m
}

func mergeMapping(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			dm, ok := dst[k].(map[string]any)
			if !ok {
				dm = map[string]any{}
				dst[k] = dm
			}
			mergeMapping(dm, sm)
			continue
		}
		dst[k] = v
	}
}

func dynamicOf(m map[string]any, inherited string) string {
	switch v := m["dynamic"].(type) {
	case string:
		return v
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	return inherited
}

func docErr(field, typ, id string, v any, cause *errorCause) *errorCause {
	preview, _ := json.Marshal(v)
	return &errorCause{
		Type: "document_parsing_exception",
		Reason: fmt.Sprintf("[1:1] failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '%s'",
			field, typ, id, strings.Trim(string(preview), `"`)),
		CausedBy: cause,
	}
}

// checkObject enforces an object mapping on a parsed document, the way a
// node rejects a value whose JSON type conflicts with the mapped type.
func checkObject(prefix string, mapping map[string]any, dynamic string, obj map[string]any, id string) *errorCause {
	props, _ := mapping["properties"].(map[string]any)
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		full := prefix + k
		fm, ok := props[k].(map[string]any)
		if !ok {
			if dynamic == "strict" {
				return &errorCause{Type: "strict_dynamic_mapping_exception",
					Reason: fmt.Sprintf("[1:1] mapping set to strict, dynamic introduction of [%s] within [%s] is not allowed", k, strings.TrimSuffix(prefix, "."))}
			}
			continue
		}
		if ce := checkValue(full, fm, dynamic, obj[k], id); ce != nil {
			return ce
		}
	}
	return nil
}

func checkValue(field string, fm map[string]any, dynamic string, v any, id string) *errorCause {
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if ce := checkValue(field, fm, dynamic, e, id); ce != nil {
				return ce
			}
		}
		return nil
	}
	if v == nil {
		return nil
	}
	typ, _ := fm["type"].(string)
	if typ == "" {
		typ = "object"
	}
	obj, isObj := v.(map[string]any)
	switch typ {
	case "object", "nested":
		if !isObj {
			return &errorCause{Type: "document_parsing_exception",
				Reason: fmt.Sprintf("[1:1] object mapping for [%s] tried to parse field [%s] as object, but found a concrete value", field, field)}
		}
		return checkObject(field+".", fm, dynamicOf(fm, dynamic), obj, id)
	case "flattened", "flat_object":
		return nil
	case "ip":
		s, ok := v.(string)
		if !ok {
			return docErr(field, typ, id, v, &errorCause{Type: "illegal_argument_exception", Reason: "not an IP string literal"})
		}
		if _, err := netip.ParseAddr(s); err != nil {
			return docErr(field, typ, id, v, &errorCause{Type: "illegal_argument_exception", Reason: fmt.Sprintf("'%s' is not an IP string literal.", s)})
		}
	case "date", "date_nanos":
		switch x := v.(type) {
		case json.Number:
		case string:
			if !parsesAsDate(x) {
				return docErr(field, typ, id, v, &errorCause{Type: "illegal_argument_exception",
					Reason: fmt.Sprintf("failed to parse date field [%s] with format [strict_date_optional_time||epoch_millis]", x)})
			}
		default:
			return docErr(field, typ, id, v, nil)
		}
	case "long", "integer", "short", "byte", "double", "float":
		switch x := v.(type) {
		case json.Number:
		case string:
			if _, err := json.Number(x).Float64(); err != nil {
				return docErr(field, typ, id, v, &errorCause{Type: "number_format_exception", Reason: fmt.Sprintf("For input string: \"%s\"", x)})
			}
		default:
			return docErr(field, typ, id, v, nil)
		}
	case "boolean":
		switch x := v.(type) {
		case bool:
		case string:
			if x != "true" && x != "false" && x != "" {
				return docErr(field, typ, id, v, &errorCause{Type: "illegal_argument_exception",
					Reason: fmt.Sprintf("Failed to parse value [%s] as only [true] or [false] are allowed.", x)})
			}
		default:
			return docErr(field, typ, id, v, nil)
		}
	default: // keyword, text, match_only_text, wildcard, constant_keyword...
		if isObj {
			return docErr(field, typ, id, v, &errorCause{Type: "illegal_argument_exception",
				Reason: "Cannot parse object as a " + typ})
		}
	}
	return nil
}

func parsesAsDate(s string) bool {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}

// fastBulk answers every create or index action 201 without storing,
// validating or allocating per item, so client benchmarks measure the
// client.
//
// With short, the answer is already in the shape of the sink's
// filter_path (only each item's status), which it then bypasses.
func (d *Double) fastBulk(w http.ResponseWriter, defIndex string, body []byte, short bool) {
	var a struct {
		Create *actionMeta `json:"create"`
		Index  *actionMeta `json:"index"`
	}
	out := make([]byte, 0, len(body)/4+64)
	out = append(out, `{"errors":false,"took":0,"items":[`...)
	n := 0
	for len(body) > 0 {
		var act []byte
		act, body = nextLine(body)
		if len(bytes.TrimSpace(act)) == 0 {
			continue
		}
		_, body = nextLine(body)
		a.Create, a.Index = nil, nil
		op, meta := "create", (*actionMeta)(nil)
		if err := json.Unmarshal(act, &a); err == nil {
			meta = a.Create
			if meta == nil {
				op, meta = "index", a.Index
			}
		}
		if meta == nil {
			writeError(w, 400, "illegal_argument_exception", "the fast path takes only create and index actions")
			return
		}
		idx := meta.Index
		if idx == "" {
			idx = defIndex
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		d.seqNo++
		if short {
			out = append(out, `{"`+op+`":{"status":201}}`...)
			continue
		}
		out = append(out, `{"`+op+`":{"_index":`...)
		out = strconv.AppendQuote(out, idx)
		out = append(out, `,"_id":`...)
		out = strconv.AppendQuote(out, meta.ID)
		out = append(out, `,"_version":1,"result":"created","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":`...)
		out = strconv.AppendInt(out, d.seqNo, 10)
		out = append(out, `,"_primary_term":1,"status":201}}`...)
	}
	out = append(out, "]}"...)
	d.stats.BulkItems += n
	d.stats.Created += n
	if f, ok := w.(*filtered); ok && short {
		w = f.ResponseWriter
		f.bypass = true
	}
	w.WriteHeader(200)
	_, _ = w.Write(out)
}
