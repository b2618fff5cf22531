// Package schema holds the JSON Schemas of the documents the exporter emits,
// the output contract for consumers of the Kafka topic and the
// Elasticsearch indices: ecs-event.schema.json, published for consumers,
// and ecs-event.strict.schema.json, derived from it for the project's own
// tests.
package schema

import _ "embed"

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
const Version = "1.0.0"

// ID is the $id of ECSEvent.
const ID = "https://github.com/sspr-exporter/sspr-exporter/schema/ecs-event.schema.json"

// StrictID is the $id of ECSEventStrict.
const StrictID = "https://github.com/sspr-exporter/sspr-exporter/schema/ecs-event.strict.schema.json"
