package kafka

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"runtime"
	"slices"
	"sync"

	kgo "github.com/segmentio/kafka-go"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
)

// SchemaVersion is the version of schema/ecs-event.schema.json the message
// values follow, sent in the "schema" header. Within a major version only
// additive changes are made.
const SchemaVersion = "1.1.0"

// Header names set on every message (docs/kafka.md is the contract).
const (
	HeaderEventID     = "event.id"
	HeaderEventAction = "event.action"
	HeaderTenant      = "tenant"
	HeaderSchema      = "schema"
	HeaderContentType = "content-type"
)

// ContentType is the value of the content-type header.
const ContentType = "application/json"

// encoder turns ECS documents into Kafka messages.
type encoder struct {
	keyMode string
	pseudo  *pseudonymizer // nil when pseudonymisation is off
}

// Header values that never change, shared by every message (kafka-go only
// reads them).
var (
	schemaValue      = []byte(SchemaVersion)
	contentTypeValue = []byte(ContentType)
)

// parallelEncodeMin is the batch size from which documents are encoded on
// several cores; below it the goroutines cost more than they save.
const parallelEncodeMin = 256

// encodeAll builds one message per document; errs[i] is for a document that
// cannot be encoded, which AppendJSON never reports. Documents are never
// modified.
func (e *encoder) encodeAll(docs []ecs.Event) (msgs []kgo.Message, errs []error) {
	msgs = make([]kgo.Message, len(docs))
	errs = make([]error, len(docs))
	workers := 1
	if len(docs) >= parallelEncodeMin {
		workers = min(runtime.GOMAXPROCS(0), 4)
	}
	chunk := (len(docs) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(docs); lo += chunk {
		hi := min(lo+chunk, len(docs))
		wg.Go(func() { e.encodeRange(docs[lo:hi], msgs[lo:hi], errs[lo:hi]) })
	}
	wg.Wait()
	return msgs, errs
}

// encodeRange encodes into one shared buffer and slices the values out of
// it at the end: one allocation per range instead of several per document.
func (e *encoder) encodeRange(docs []ecs.Event, msgs []kgo.Message, errs []error) {
	// AppendJSON keeps <, > and & literal: consumers read the value as
	// JSON, not HTML.
	buf := make([]byte, 0, len(docs)*1600)
	ends := make([]int, len(docs))
	for i := range docs {
		ev := &docs[i]
		if e.pseudo != nil {
			c := e.pseudo.apply(ev)
			ev = &c
		}
		buf = ev.AppendJSON(buf)
		ends[i] = len(buf)

		headers := make([]kgo.Header, 0, 5)
		headers = appendHeader(headers, HeaderEventID, ev.Event.ID)
		headers = appendHeader(headers, HeaderEventAction, ev.Event.Action)
		headers = appendHeader(headers, HeaderTenant, ev.Tenant())
		headers = append(headers,
			kgo.Header{Key: HeaderSchema, Value: schemaValue},
			kgo.Header{Key: HeaderContentType, Value: contentTypeValue})
		msgs[i] = kgo.Message{Key: messageKey(ev, e.keyMode), Headers: headers}
	}
	data := buf
	start := 0
	for i := range docs {
		if errs[i] == nil {
			msgs[i].Value = data[start:ends[i]:ends[i]]
		}
		start = ends[i]
	}
}

func appendHeader(h []kgo.Header, key, value string) []kgo.Header {
	if value == "" {
		return h
	}
	return append(h, kgo.Header{Key: key, Value: []byte(value)})
}

// messageKey returns the key for mode, or nil (a null key) when the
// document has no value for it.
func messageKey(ev *ecs.Event, mode string) []byte {
	var k string
	switch mode {
	case KeyUser:
		k = ev.User.Target.ID
		if k == "" {
			k = ev.User.ID
		}
	case KeyTenant:
		k = ev.Cloud.Account.ID
	}
	if k == "" {
		return nil
	}
	return []byte(k)
}

// messageSize is an upper bound of what kafka-go counts against its batch
// limit for m (record overhead included), so the sink's own size check
// always fires before kafka-go's whole-call MessageTooLargeError.
func messageSize(m *kgo.Message) int {
	n := 64 + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}

// pseudonymizer replaces personal values with hex HMAC-SHA-256 digests
// under a secret key: stable for a key, so equal inputs still correlate,
// but not reversible without the key.
type pseudonymizer struct {
	pool sync.Pool
}

func newPseudonymizer(key []byte) *pseudonymizer {
	k := slices.Clone(key)
	return &pseudonymizer{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, k) }}}
}

func (p *pseudonymizer) hash(s string) string {
	if s == "" {
		return ""
	}
	h := p.pool.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(s))
	var sum [sha256.Size]byte
	out := hex.EncodeToString(h.Sum(sum[:0]))
	p.pool.Put(h)
	return out
}

func (p *pseudonymizer) hashAll(in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = p.hash(s)
	}
	return out
}

// apply returns a pseudonymised copy of ev; slices that change are copied,
// so the caller's document is left as it was.
//
// Replaced: user.{id,name,full_name}, user.target.{id,name,full_name},
// related.user, related.ip, source.ip and the id, display_name and
// user_principal_name of every azure.auditlogs.target_resources entry.
// event.original is dropped, since it holds all of these in clear, and so
// are the city, region and coordinates of source.geo: with a timestamp
// they point at a person as well as the address does.
// Kept: user agents, domains, tenant, application identities, modified
// properties (names of changed settings, not personal values), the
// country and the autonomous system of the address, groups and roles.
func (p *pseudonymizer) apply(ev *ecs.Event) ecs.Event {
	c := *ev
	c.Event.Original = ""
	c.User.ID = p.hash(c.User.ID)
	c.User.Name = p.hash(c.User.Name)
	c.User.FullName = p.hash(c.User.FullName)
	c.User.Target.ID = p.hash(c.User.Target.ID)
	c.User.Target.Name = p.hash(c.User.Target.Name)
	c.User.Target.FullName = p.hash(c.User.Target.FullName)
	c.Related.User = p.hashAll(c.Related.User)
	c.Related.IP = p.hashAll(c.Related.IP)
	c.Source.IP = p.hash(c.Source.IP)
	c.Source.Geo = ecs.Geo{CountryISOCode: c.Source.Geo.CountryISOCode, CountryName: c.Source.Geo.CountryName}
	if tr := c.Azure.AuditLogs.TargetResources; tr != nil {
		out := make([]ecs.TargetResource, len(tr))
		for i, r := range tr {
			r.ID = p.hash(r.ID)
			r.DisplayName = p.hash(r.DisplayName)
			r.UserPrincipalName = p.hash(r.UserPrincipalName)
			out[i] = r
		}
		c.Azure.AuditLogs.TargetResources = out
	}
	return c
}
