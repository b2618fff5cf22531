package ecs

import (
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// AppendJSON appends the JSON encoding of e to dst and returns the extended
// buffer. The bytes are exactly those of a json.Encoder with SetEscapeHTML(false)
// without its trailing newline: same field order, same omitempty/omitzero
// decisions, map keys sorted, and the same string escaping. It exists because
// reflection-driven encoding dominated the cost of every sink; it allocates
// only when dst must grow (or for a map with more than mapKeysOnStack keys).
func (e *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"@timestamp":`...)
	dst = appendString(dst, e.Timestamp)
	dst = append(dst, `,"ecs":{"version":`...)
	dst = appendString(dst, e.ECS.Version)
	dst = append(dst, `},"event":`...)
	dst = e.Event.appendJSON(dst)
	if !e.User.isZero() {
		dst = append(dst, `,"user":`...)
		dst = e.User.appendJSON(dst)
	}
	if !e.Related.isZero() {
		dst = append(dst, `,"related":`...)
		dst = e.Related.appendJSON(dst)
	}
	if !e.Source.isZero() {
		dst = append(dst, `,"source":`...)
		dst = e.Source.appendJSON(dst)
	}
	if e.Cloud != (Cloud{}) {
		dst = append(dst, `,"cloud":`...)
		dst = e.Cloud.appendJSON(dst)
	}
	if e.UserAgent != (UserAgent{}) {
		dst = append(dst, `,"user_agent":{`...)
		if e.UserAgent.Original != "" {
			dst = append(dst, `"original":`...)
			dst = appendString(dst, e.UserAgent.Original)
		}
		dst = append(dst, '}')
	}
	if !e.Azure.isZero() {
		dst = append(dst, `,"azure":`...)
		dst = e.Azure.appendJSON(dst)
	}
	if !e.Entra.isZero() {
		dst = append(dst, `,"entra":`...)
		dst = e.Entra.appendJSON(dst)
	}
	return append(dst, '}')
}

// object tracks whether a JSON object already has a member, so that optional
// members get their separating comma right.
type object struct{ n int }

// key appends the separator (when needed) and k, which must be a quoted key
// followed by a colon, e.g. `"id":`.
func (o *object) key(dst []byte, k string) []byte {
	if o.n > 0 {
		dst = append(dst, ',')
	}
	o.n++
	return append(dst, k...)
}

// str appends an omitempty string member.
func (o *object) str(dst []byte, k, v string) []byte {
	if v == "" {
		return dst
	}
	return appendString(o.key(dst, k), v)
}

// strs appends an omitempty string-slice member.
func (o *object) strs(dst []byte, k string, v []string) []byte {
	if len(v) == 0 {
		return dst
	}
	return appendStrings(o.key(dst, k), v)
}

func (m *EventMeta) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"kind":`...)
	dst = appendString(dst, m.Kind)
	dst = append(dst, `,"category":`...)
	dst = appendStrings(dst, m.Category)
	dst = append(dst, `,"type":`...)
	dst = appendStrings(dst, m.Type)
	dst = append(dst, `,"action":`...)
	dst = appendString(dst, m.Action)
	dst = append(dst, `,"outcome":`...)
	dst = appendString(dst, m.Outcome)
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, m.ID)
	if m.Reason != "" {
		dst = append(dst, `,"reason":`...)
		dst = appendString(dst, m.Reason)
	}
	if m.Provider != "" {
		dst = append(dst, `,"provider":`...)
		dst = appendString(dst, m.Provider)
	}
	dst = append(dst, `,"dataset":`...)
	dst = appendString(dst, m.Dataset)
	if m.Original != "" {
		dst = append(dst, `,"original":`...)
		dst = appendString(dst, m.Original)
	}
	return append(dst, '}')
}

func (u *User) isZero() bool {
	return u.ID == "" && u.Name == "" && u.FullName == "" && u.Domain == "" && u.Target.isZero()
}

func (t *TargetUser) isZero() bool {
	return t.ID == "" && t.Name == "" && t.FullName == "" && t.Domain == "" && t.Group.isZero() && t.Roles == nil
}

func (g *TargetGroup) isZero() bool { return g.ID == nil && g.Name == nil }

func (u *User) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	var o object
	dst = o.str(dst, `"id":`, u.ID)
	dst = o.str(dst, `"name":`, u.Name)
	dst = o.str(dst, `"full_name":`, u.FullName)
	dst = o.str(dst, `"domain":`, u.Domain)
	if t := &u.Target; !t.isZero() {
		dst = o.key(dst, `"target":{`)
		var ot object
		dst = ot.str(dst, `"id":`, t.ID)
		dst = ot.str(dst, `"name":`, t.Name)
		dst = ot.str(dst, `"full_name":`, t.FullName)
		dst = ot.str(dst, `"domain":`, t.Domain)
		if g := &t.Group; !g.isZero() {
			dst = ot.key(dst, `"group":{`)
			var og object
			dst = og.strs(dst, `"id":`, g.ID)
			dst = og.strs(dst, `"name":`, g.Name)
			dst = append(dst, '}')
		}
		dst = ot.strs(dst, `"roles":`, t.Roles)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func (s *Source) isZero() bool {
	return s.IP == "" && s.Geo.isZero() && s.AS == (AS{})
}

func (s *Source) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	var o object
	dst = o.str(dst, `"ip":`, s.IP)
	if g := &s.Geo; !g.isZero() {
		dst = o.key(dst, `"geo":{`)
		var og object
		dst = og.str(dst, `"city_name":`, g.CityName)
		dst = og.str(dst, `"country_iso_code":`, g.CountryISOCode)
		dst = og.str(dst, `"country_name":`, g.CountryName)
		dst = og.str(dst, `"region_iso_code":`, g.RegionISOCode)
		dst = og.str(dst, `"region_name":`, g.RegionName)
		if l := g.Location; l != nil {
			dst = og.key(dst, `"location":{"lat":`)
			dst = appendFloat(dst, l.Lat)
			dst = append(dst, `,"lon":`...)
			dst = appendFloat(dst, l.Lon)
			dst = append(dst, '}')
		}
		dst = append(dst, '}')
	}
	if a := &s.AS; *a != (AS{}) {
		dst = o.key(dst, `"as":{`)
		var oa object
		if a.Number != 0 {
			dst = strconv.AppendInt(oa.key(dst, `"number":`), a.Number, 10)
		}
		if a.Organization != (ASOrganization{}) {
			dst = oa.key(dst, `"organization":{`)
			var oo object
			dst = oo.str(dst, `"name":`, a.Organization.Name)
			dst = append(dst, '}')
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func (g *Geo) isZero() bool {
	return g.CityName == "" && g.CountryISOCode == "" && g.CountryName == "" &&
		g.RegionISOCode == "" && g.RegionName == "" && g.Location == nil
}

func (e *Entra) isZero() bool { return e.SSPR == (SSPR{}) }

func (e *Entra) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	if s := &e.SSPR; *s != (SSPR{}) {
		dst = append(dst, `"sspr":{`...)
		var o object
		dst = o.str(dst, `"initiator":`, s.Initiator)
		dst = o.str(dst, `"step":`, s.Step)
		dst = o.str(dst, `"method":`, s.Method)
		if s.Blocked {
			dst = append(o.key(dst, `"blocked":`), "true"...)
		}
		if s.Flow != (Flow{}) {
			dst = o.key(dst, `"flow":{`)
			var of object
			dst = of.str(dst, `"id":`, s.Flow.ID)
			dst = append(dst, '}')
		}
		dst = o.str(dst, `"writeback":`, s.Writeback)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// isZero follows reflect.Value.IsZero, which omitzero uses: a slice is zero
// only when nil, so an empty non-nil slice keeps the object (as "{}").
func (r *Related) isZero() bool { return r.User == nil && r.IP == nil }

func (r *Related) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	var o object
	if len(r.User) > 0 {
		dst = appendStrings(o.key(dst, `"user":`), r.User)
	}
	if len(r.IP) > 0 {
		dst = appendStrings(o.key(dst, `"ip":`), r.IP)
	}
	return append(dst, '}')
}

func (c *Cloud) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	var o object
	dst = o.str(dst, `"provider":`, c.Provider)
	if c.Account != (CloudAccount{}) {
		dst = o.key(dst, `"account":{`)
		if c.Account.ID != "" {
			dst = append(dst, `"id":`...)
			dst = appendString(dst, c.Account.ID)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func (a *Azure) isZero() bool {
	return a.CorrelationID == "" && a.TenantID == "" && a.ResourceID == "" && a.AuditLogs.isZero()
}

func (a *Azure) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	var o object
	dst = o.str(dst, `"correlation_id":`, a.CorrelationID)
	dst = o.str(dst, `"tenant_id":`, a.TenantID)
	dst = o.str(dst, `"resource_id":`, a.ResourceID)
	if !a.AuditLogs.isZero() {
		dst = a.AuditLogs.appendJSON(o.key(dst, `"auditlogs":`))
	}
	return append(dst, '}')
}

func (l *AuditLogs) isZero() bool {
	return l.Category == "" && l.OperationName == "" && l.OperationType == "" &&
		l.OperationVersion == "" && l.Result == "" && l.ResultReason == "" &&
		l.LoggedByService == "" && l.AdditionalDetails == nil &&
		l.InitiatedBy == (InitiatedBy{}) && l.TargetResources == nil
}

func (l *AuditLogs) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	var o object
	dst = o.str(dst, `"category":`, l.Category)
	dst = o.str(dst, `"operation_name":`, l.OperationName)
	dst = o.str(dst, `"operation_type":`, l.OperationType)
	dst = o.str(dst, `"operation_version":`, l.OperationVersion)
	dst = o.str(dst, `"result":`, l.Result)
	dst = o.str(dst, `"result_reason":`, l.ResultReason)
	dst = o.str(dst, `"logged_by_service":`, l.LoggedByService)
	if len(l.AdditionalDetails) > 0 {
		dst = appendStringMap(o.key(dst, `"additional_details":`), l.AdditionalDetails)
	}
	if l.InitiatedBy != (InitiatedBy{}) {
		dst = o.key(dst, `"initiated_by":{`)
		if app := &l.InitiatedBy.App; *app != (App{}) {
			dst = append(dst, `"app":{`...)
			var oa object
			dst = oa.str(dst, `"app_id":`, app.AppID)
			dst = oa.str(dst, `"display_name":`, app.DisplayName)
			dst = oa.str(dst, `"service_principal_id":`, app.ServicePrincipalID)
			dst = oa.str(dst, `"service_principal_name":`, app.ServicePrincipalName)
			dst = append(dst, '}')
		}
		dst = append(dst, '}')
	}
	if len(l.TargetResources) > 0 {
		dst = o.key(dst, `"target_resources":[`)
		for i := range l.TargetResources {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = l.TargetResources[i].appendJSON(dst)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

func (r *TargetResource) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	var o object
	dst = o.str(dst, `"id":`, r.ID)
	dst = o.str(dst, `"display_name":`, r.DisplayName)
	dst = o.str(dst, `"type":`, r.Type)
	dst = o.str(dst, `"user_principal_name":`, r.UserPrincipalName)
	dst = o.str(dst, `"group_type":`, r.GroupType)
	if len(r.ModifiedProperties) > 0 {
		dst = o.key(dst, `"modified_properties":[`)
		for i := range r.ModifiedProperties {
			p := &r.ModifiedProperties[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '{')
			var op object
			dst = op.str(dst, `"display_name":`, p.DisplayName)
			dst = op.str(dst, `"old_value":`, p.OldValue)
			dst = op.str(dst, `"new_value":`, p.NewValue)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// appendStrings encodes a slice as encoding/json does: null when nil, [] when
// empty.
func appendStrings(dst []byte, s []string) []byte {
	if s == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, v := range s {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, v)
	}
	return append(dst, ']')
}

// mapKeysOnStack bounds the maps whose keys are sorted in a stack array;
// larger ones (not seen in Entra records) pay for a heap slice.
const mapKeysOnStack = 32

// appendStringMap encodes a non-nil map with its keys in byte order, as
// encoding/json sorts them. Pairs are collected so that values need no
// second lookup.
func appendStringMap(dst []byte, m map[string]string) []byte {
	type pair struct{ k, v string }
	var stack [mapKeysOnStack]pair
	var pairs []pair
	if len(m) <= len(stack) {
		pairs = stack[:0]
	} else {
		pairs = make([]pair, 0, len(m))
	}
	for k, v := range m {
		pairs = append(pairs, pair{k, v})
	}
	slices.SortFunc(pairs, func(a, b pair) int { return strings.Compare(a.k, b.k) })
	dst = append(dst, '{')
	for i := range pairs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, pairs[i].k)
		dst = append(dst, ':')
		dst = appendString(dst, pairs[i].v)
	}
	return append(dst, '}')
}

// appendFloat encodes a float64 as encoding/json does: the shortest
// decimal that reads back to the same value, in exponent form (with a
// two-digit negative exponent shortened) below 1e-6 and from 1e21. NaN and
// infinities have no JSON form; callers never hold them (coordinates are
// range-checked where they are read).
func appendFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9, as encoding/json writes it.
		if n := len(dst) - start; n >= 4 && dst[len(dst)-4] == 'e' && dst[len(dst)-3] == '-' && dst[len(dst)-2] == '0' {
			dst[len(dst)-2] = dst[len(dst)-1]
			dst = dst[:len(dst)-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// safeASCII marks the ASCII bytes copied verbatim into a JSON string with
// HTML escaping off: everything printable except '"' and '\\'.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// appendString appends s as a quoted JSON string, escaped byte for byte as
// encoding/json does with HTML escaping off: short escapes for '"', '\\',
// \b, \f, \n, \r and \t, \u00XX for other control characters, \u2028 and
// \u2029 (which break JavaScript), and \ufffd for each invalid UTF-8 byte.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Skip eight plain ASCII bytes at a time: most of a document is
		// identifiers and names with nothing to escape.
		// Written out here rather than called: the inliner refuses it,
		// and the call would cost as much as the scan.
		for i+8 <= len(s) {
			c := s[i : i+8]
			x := uint64(c[0]) | uint64(c[1])<<8 | uint64(c[2])<<16 | uint64(c[3])<<24 |
				uint64(c[4])<<32 | uint64(c[5])<<40 | uint64(c[6])<<48 | uint64(c[7])<<56
			q, b := x^quotes, x^slashs
			n := bits.TrailingZeros64(((x-0x20*ones)&^x|(q-ones)&^q|(b-ones)&^b|x)&highs) >> 3
			i += n
			if n < 8 {
				break
			}
		}
		if i >= len(s) {
			break
		}
		if b := s[i]; b < utf8.RuneSelf {
			if safeASCII[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// The chunked scan in appendString loads eight bytes as x and sets, per
// byte, the high bit when the byte is below 0x20 ((x-0x20*ones)&^x), is '"'
// or '\\' (the same test against one, finding zero bytes of x^quotes and
// x^slashs), or has its own high bit set (x). A borrow can also set the bit
// in a byte after a failing one, never before, so the lowest set bit marks
// the first byte that needs the slow path.
const (
	ones   = 0x0101010101010101
	highs  = 0x8080808080808080
	quotes = '"' * ones
	slashs = '\\' * ones
)
