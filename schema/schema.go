// Package schema holds the JSON Schema of the documents the exporter emits
// (ecs-event.schema.json), the output contract for consumers of the Kafka
// topic and the Elasticsearch data stream.
package schema

import _ "embed"

// ECSEvent is the JSON Schema (draft 2020-12) of one emitted document.
//
//go:embed ecs-event.schema.json
var ECSEvent []byte

// Version is the schema's version annotation; a change to the document
// shape that a consumer can notice changes it.
const Version = "1.0.0"

// ID is the schema's $id.
const ID = "https://github.com/sspr-exporter/sspr-exporter/schema/ecs-event.schema.json"
