// Package schema holds the JSON Schemas of the documents the exporter emits,
// the output contract for consumers of the Kafka topic and the
// Elasticsearch indices: ecs-event.schema.json, published for consumers,
// and ecs-event.strict.schema.json, derived from it for the project's own
// tests.
package schema

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ECSEvent is the JSON Schema (draft 2020-12) of one emitted document as
// published for consumers: required fields and types are fixed, and every
// object may also hold properties the schema does not define, so that a
// document with fields added later in the same major version still
// validates.
//
//go:embed ecs-event.schema.json
var ECSEvent []byte

// ECSEventStrict is ECSEvent with no undefined property allowed in any
// object; the project's tests validate what the exporter emits against it.
//
//go:embed ecs-event.strict.schema.json
var ECSEventStrict []byte

// Version is the schemas' version annotation; a change to the document
// shape that a consumer can notice changes it.
const Version = "1.1.0"

// ID is the $id of ECSEvent.
const ID = "https://github.com/sspr-exporter/sspr-exporter/schema/ecs-event.schema.json"

// StrictID is the $id of ECSEventStrict.
const StrictID = "https://github.com/sspr-exporter/sspr-exporter/schema/ecs-event.strict.schema.json"

// Published returns the compiled ECSEvent schema, formats asserted.
var Published = sync.OnceValues(func() (*jsonschema.Schema, error) { return compile(ECSEvent, ID) })

// Strict returns the compiled ECSEventStrict schema, formats asserted.
var Strict = sync.OnceValues(func() (*jsonschema.Schema, error) { return compile(ECSEventStrict, StrictID) })

func compile(data []byte, id string) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", id, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(id, doc); err != nil {
		return nil, fmt.Errorf("schema %s: %w", id, err)
	}
	s, err := c.Compile(id)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", id, err)
	}
	return s, nil
}
