// Package storetest provides the documents the event store tests and the
// report tests read: the exporter's own decoding of the project's SSPR
// test inputs, written as its file output writes them.
package storetest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/app"
	"github.com/sspr-exporter/sspr-exporter/internal/config"
	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
	"github.com/sspr-exporter/sspr-exporter/internal/testdata"
)

// Inputs are the audit-record files the corpus is decoded from, below the
// repository root.
var Inputs = []string{
	"testdata/sspr/eventhub-body-mixed.json",
	"testdata/trail/catalog.json",
	"testdata/trail/flow-steps.json",
	"testdata/trail/admin-resets.json",
}

// Enriched are the users whose documents get groups and a location, as
// Graph and GeoIP enrichment would add them.
var Enriched = map[string]struct {
	GroupIDs, Groups []string
	City, Country    string
}{
	"ada.lovelace@contoso.example":  {[]string{"0b7c6d52-0000-4000-8000-000000000001"}, []string{"Finance", "SSPR Users"}, "Montréal", "CA"},
	"noor.silva0@contoso.example":   {[]string{"0b7c6d52-0000-4000-8000-000000000002"}, []string{"SSPR Users"}, "Lisbon", "PT"},
	"bo.lindqvist@contoso.example":  {nil, nil, "Göteborg", "SE"},
	"chen.wei@contoso.example":      {[]string{"0b7c6d52-0000-4000-8000-000000000003"}, []string{"=HYPERLINK(\"x\")"}, "", ""},
	"lee.tanaka6@contoso.example":   {[]string{"0b7c6d52-0000-4000-8000-000000000001"}, []string{"Finance"}, "", ""},
	"ria.garcia1@contoso.example":   {nil, nil, "+Paris", "FR"},
	"sam.olsen2@contoso.example":    {nil, nil, "@Oslo", "NO"},
	"kim.weber7@contoso.example":    {nil, nil, "-Bern", "CH"},
	"alex.novak3@contoso.example":   {nil, nil, "", ""},
	"dana.helpdesk@contoso.example": {nil, nil, "", ""},
}

// Corpus decodes Inputs with the exporter's decoder (default config) and
// adds the enrichment of Enriched, so that the group and location columns
// and filters have data. Some values start with =, +, - or @ to exercise
// the CSV escaping.
func Corpus(tb testing.TB) []ecs.Event {
	tb.Helper()
	d, err := app.Decoder(config.Default())
	if err != nil {
		tb.Fatal(err)
	}
	root := testdata.Root(tb)
	var docs []ecs.Event
	for _, in := range Inputs {
		b, err := os.ReadFile(filepath.Join(root, in))
		if err != nil {
			tb.Fatal(err)
		}
		res := d.Decode([]stream.Body{{Data: b, Pos: stream.Position{Kind: "file", File: in, Line: 1}}})
		if len(res.Docs) == 0 {
			tb.Fatalf("%s: no documents", in)
		}
		docs = append(docs, res.Docs...)
	}
	for i := range docs {
		e := &docs[i]
		x, ok := Enriched[e.User.Target.Name]
		if !ok {
			continue
		}
		e.User.Target.Group.ID = slices.Clone(x.GroupIDs)
		e.User.Target.Group.Name = slices.Clone(x.Groups)
		e.Source.Geo.CityName, e.Source.Geo.CountryISOCode = x.City, x.Country
	}
	return docs
}

// WriteNDJSON writes docs to path as the file output writes them: one
// AppendJSON document per line.
func WriteNDJSON(tb testing.TB, path string, docs []ecs.Event) {
	tb.Helper()
	var b []byte
	for i := range docs {
		b = append(docs[i].AppendJSON(b), '\n')
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}
