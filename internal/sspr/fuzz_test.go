package sspr_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sspr-exporter/sspr-exporter/internal/entra"
	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/testdata"
)

// Fuzz briefly with:
//
//	go test -run='^$' -fuzz=FuzzNormalize -fuzztime=20s ./internal/sspr

var timestampRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z$`)

// FuzzNormalize: decoding, classifying and normalizing any input never
// panics, and every document it produces is free of empty values and has
// its always-present fields set.
func FuzzNormalize(f *testing.F) {
	ins := projectInputs(f)
	if _, ok := testdata.SharedDir(); ok {
		ins = append(ins, sharedInputs(f)...)
	}
	// Seeds are single records: small inputs keep executions fast and
	// minimization short. The SSPR variants reach normalization; most real
	// records do not.
	seen := map[string]bool{}
	for _, in := range ins {
		datas := [][]byte{in.data}
		if v, ok := variant(in); ok {
			datas = append(datas, v.data)
		}
		for _, data := range datas {
			sc := entra.NewBytesScanner(data, 0)
			for {
				v, err := sc.Next()
				if err != nil {
					break
				}
				_ = v.Records(func(r entra.RawRecord) error {
					if !seen[string(r.Data)] {
						seen[string(r.Data)] = true
						f.Add(bytes.Clone(r.Data))
					}
					return nil
				})
			}
		}
	}
	f.Add([]byte(`{"records":[{"a":1},{"category":"AuditLogs","time":"2026-11-02T08:00:08Z","properties":{"activityDisplayName":"Reset password (by admin)","result":"1"}}]}`))
	f.Add([]byte(`{"category":"AuditLogs","time":"1/9/2007 9:41:00 AM","properties":{"activityDisplayName":"Reset password (self-service)","additionalDetails":"None","initiatedBy":{},"targetResource":[{"@odata.type":"#microsoft.graph.targetResourceUser","userPrincipalName":" @ "}]}}`))
	f.Add([]byte(`{"activityDisplayName":"Unlock user account (self-service)","loggedByService":"x","createdDateTime":"2007-01-09T09:41:00+02:00","initiatedBy":{"user":{"ipAddress":"[::ffff:1.2.3.4]:80","userPrincipalName":"a@"}}}`))

	f.Add([]byte(`{"activityDisplayName":"Reset p7y\u0671\ufffd}assword (self-service)","loggedByService":"Self-service Password Management","activityDateTime":"2026-11-02T08:00:12Z"}`))

	d := newDecoder(f, sspr.Options{PreserveOriginal: true, DefaultTenantID: "t"})
	f.Fuzz(func(t *testing.T, in []byte) {
		res := d.Decode([]stream.Body{{Data: in, Pos: stream.Position{Kind: "file", File: "fuzz", Line: 1}}})
		c := res.Counts
		if c.SSPR != int64(len(res.Docs)) || c.SSPR+c.Dropped > c.Records {
			t.Fatalf("counts %+v for %d documents", c, len(res.Docs))
		}
		for i := range res.Docs {
			doc := &res.Docs[i]
			b, err := json.Marshal(doc)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			var v any
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			if empty := emptyValues("", v); len(empty) > 0 {
				t.Fatalf("empty values %v in %s", empty, b)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if err := eventSchema(t).Validate(inst); err != nil {
				t.Fatalf("schema: %v\n%s", err, b)
			}
			if !timestampRE.MatchString(doc.Timestamp) {
				t.Fatalf("@timestamp %q", doc.Timestamp)
			}
			ev := doc.Event
			if ev.ID == "" || ev.Action == "" || ev.Kind == "" || ev.Outcome == "" || len(ev.Type) == 0 || len(ev.Category) == 0 {
				t.Fatalf("required field missing in %s", b)
			}
		}
	})
}
