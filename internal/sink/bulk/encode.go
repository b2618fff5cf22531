package bulk

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
)

// item is one document's action and source lines inside a chunk buffer.
type item struct {
	doc        int // index into the docs of Write
	start, end int // byte range in the chunk's buffer
}

// chunk is the body of one bulk request and where each document is in it.
type chunk struct {
	buf   *bytes.Buffer
	items []item
}

// encodeEvent writes the action and source lines of d into b.
func encodeEvent(b *bytes.Buffer, index string, d *ecs.Event) {
	writeAction(b, index, DocID(d.Event.ID))
	// AppendJSON into the spare capacity makes the Write a copy onto
	// itself; '<', '>' and '&' stay literal, as the engines store them.
	b.Write(d.AppendJSON(b.AvailableBuffer()))
	b.WriteByte('\n')
}

// writeAction writes {"create":{"_index":"...","_id":"..."}} and a newline.
func writeAction(b *bytes.Buffer, index, id string) {
	b.WriteString(`{"create":{"_index":`)
	writeString(b, index)
	b.WriteString(`,"_id":`)
	writeString(b, id)
	b.WriteString("}}\n")
}

// writeString writes s as a JSON string; the common case, nothing to
// escape, without encoding/json.
func writeString(b *bytes.Buffer, s string) {
	if plainJSON(s) {
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
		return
	}
	q, _ := json.Marshal(s)
	b.Write(q)
}

// maxIDBytes is the engines' limit on an _id, in bytes of UTF-8: a longer
// one makes the node refuse the whole bulk request.
const maxIDBytes = 512

// hashedIDPrefix starts the _id of a record id that is not used as is.
const hashedIDPrefix = "longid-sha256-"

// DocID is the _id a record id is stored under: the id itself, or, when it
// is longer than the engines allow, "longid-sha256-" and the hex SHA-256
// of its bytes (78 bytes). The same id always gives the same _id, so
// replays still deduplicate; event.id keeps the id whole. An id that
// itself starts with the prefix is hashed too, so a record can never be
// taken for a copy of another whose id was hashed.
func DocID(id string) string {
	if len(id) <= maxIDBytes && !strings.HasPrefix(id, hashedIDPrefix) && encodedLen(id) <= maxIDBytes {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return hashedIDPrefix + hex.EncodeToString(sum[:])
}

// encodedLen is the length of s as the node receives it: encoding/json
// turns each byte that is not UTF-8 into U+FFFD (3 bytes).
func encodedLen(s string) int {
	if utf8.ValidString(s) {
		return len(s)
	}
	n := 0
	for _, r := range s {
		n += utf8.RuneLen(r)
	}
	return n
}

func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			return false
		}
	}
	return true
}

// buildBody copies the lines of items out of src into a new body.
func buildBody(src []byte, items []item) []byte {
	n := 0
	for _, it := range items {
		n += it.end - it.start
	}
	b := make([]byte, 0, n)
	for _, it := range items {
		b = append(b, src[it.start:it.end]...)
	}
	return b
}
