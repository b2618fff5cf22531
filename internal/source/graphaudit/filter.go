package graphaudit

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sspr-exporter/sspr-exporter/internal/sspr"
)

// The directoryAudit resource supports $filter with eq, ge and le on
// activityDateTime, eq and startswith on activityDisplayName, eq on
// loggedByService, joined by and / or (not the in operator, which the
// resource does not list). Graph documents a limit of 15 expressions for
// the in operator, 120 characters for a value matched with eq, and 2,048
// characters for the URL of advanced queries; the catalog's comparisons
// are packed into queries that keep within all three, conservatively,
// whatever the resource's own limits.

// maxURL bounds the length of one request URL.
const maxURL = 2048

// timeLayout writes activityDateTime literals: 100 ns ticks, as Graph
// dates are, at a fixed width so that the URL's length does not depend on
// the slice.
const timeLayout = "2006-01-02T15:04:05.0000000Z"

// tick is the resolution of activityDateTime: a slice [from, to) is
// queried as ge from and le to-tick, since the property supports no lt.
const tick = 100 * time.Nanosecond

// terms are the comparisons a record must satisfy one of: logged by the
// SSPR service (whose every activity the classifier keeps), or one of
// the catalog's activity names, each once (names match case-insensitively).
func terms(activities []string) []string {
	out := []string{"loggedByService eq " + quote(sspr.ServiceName)}
	seen := map[string]bool{}
	names := slices.Clone(activities)
	slices.Sort(names)
	for _, n := range names {
		n = strings.TrimSpace(n)
		k := strings.ToLower(n)
		if n == "" || seen[k] {
			continue
		}
		seen[k] = true
		if len(n) > maxEqValue {
			// Graph matches at most 120 characters with eq; the
			// classifier drops what the prefix lets through.
			out = append(out, "startswith(activityDisplayName,"+quote(prefix(n, maxEqValue))+")")
			continue
		}
		out = append(out, "activityDisplayName eq "+quote(n))
	}
	return out
}

// maxEqValue is the longest value Graph matches with eq.
const maxEqValue = 120

// prefix is the longest prefix of s of at most n bytes that ends on a
// character boundary.
func prefix(s string, n int) string {
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:min(n, len(s))]
}

// quote is an OData string literal: single quotes, a quote doubled.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// escape encodes a query parameter value, spaces as %20.
func escape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// timeFilter is the slice part of a query.
func timeFilter(from, to time.Time) string {
	return "activityDateTime ge " + from.UTC().Format(timeLayout) + " and activityDateTime le " + to.Add(-tick).UTC().Format(timeLayout)
}

// queryURL is one request: the slice, one group of terms, the page size.
func queryURL(base string, from, to time.Time, group string, top int) string {
	f := timeFilter(from, to) + " and (" + group + ")"
	return base + "?$filter=" + escape(f) + "&$top=" + strconv.Itoa(top)
}

// groups packs the terms into as few queries as keep each within
// maxTerms comparisons (the slice's two included) and maxURL characters.
func groups(base string, terms []string, maxTerms, top int) []string {
	sample := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	fits := func(g []string) bool {
		return len(g)+2 <= maxTerms && len(queryURL(base, sample, sample.Add(time.Hour), strings.Join(g, " or "), top)) <= maxURL
	}
	var out []string
	var cur []string
	for _, t := range terms {
		if len(cur) > 0 && !fits(append(slices.Clone(cur), t)) {
			out = append(out, strings.Join(cur, " or "))
			cur = nil
		}
		cur = append(cur, t)
	}
	if len(cur) > 0 {
		out = append(out, strings.Join(cur, " or "))
	}
	return out
}

// version names a set of queries: slices read with other queries (an
// extended catalog) are read again.
func version(groups []string) string {
	h := sha256.New()
	for _, g := range groups {
		h.Write([]byte(g))
		h.Write([]byte{0})
	}
	return "q-" + hex.EncodeToString(h.Sum(nil)[:8])
}
