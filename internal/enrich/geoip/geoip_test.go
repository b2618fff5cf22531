package geoip_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich/geoip"
	"github.com/sspr-exporter/sspr-exporter/internal/enrich/geoip/geoiptest"
)

func newEnricher(t *testing.T, cfg geoip.Config) *geoip.Enricher {
	t.Helper()
	e, err := geoip.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

func docsWith(ips ...string) []ecs.Event {
	docs := make([]ecs.Event, len(ips))
	for i, ip := range ips {
		docs[i].Source.IP = ip
	}
	return docs
}

func TestLookupFields(t *testing.T) {
	city, asn := geoiptest.Sample(t, t.TempDir())
	e := newEnricher(t, geoip.Config{CityDatabase: city, ASNDatabase: asn})
	docs := docsWith("192.0.2.44", "198.51.100.7", "203.0.113.9", "2001:db8:aa::e", "100.64.0.1", "")
	e.Enrich(docs)
	want := []ecs.Source{
		{
			IP: "192.0.2.44",
			Geo: ecs.Geo{
				CityName: "Montreal", CountryISOCode: "CA", CountryName: "Canada", RegionISOCode: "CA-QC", RegionName: "Quebec",
				Location: &ecs.GeoPoint{Lat: 45.505918, Lon: -73.61483},
			},
			AS: ecs.AS{Number: 64496, Organization: ecs.ASOrganization{Name: "Example Transit"}},
		},
		{
			IP: "198.51.100.7",
			Geo: ecs.Geo{
				CityName: "Lyon", CountryISOCode: "FR", CountryName: "France", RegionISOCode: "FR-ARA", RegionName: "Auvergne-Rhone-Alpes",
				Location: &ecs.GeoPoint{Lat: 45.7578, Lon: 4.832},
			},
			AS: ecs.AS{Number: 64497, Organization: ecs.ASOrganization{Name: "Example Access"}},
		},
		// A country-level record, and no AS.
		{IP: "203.0.113.9", Geo: ecs.Geo{CountryISOCode: "JP", CountryName: "Japan", Location: &ecs.GeoPoint{Lat: 35.69, Lon: 139.69}}},
		// IPv6; an AS without an organization.
		{
			IP: "2001:db8:aa::e",
			Geo: ecs.Geo{
				CityName: "Oslo", CountryISOCode: "NO", CountryName: "Norway", RegionISOCode: "NO-03", RegionName: "Oslo",
				Location: &ecs.GeoPoint{Lat: 59.9133, Lon: 10.7389},
			},
			AS: ecs.AS{Number: 64498},
		},
		// Not in the databases, and no address: nothing added.
		{IP: "100.64.0.1"},
		{},
	}
	for i := range docs {
		if !reflect.DeepEqual(docs[i].Source, want[i]) {
			t.Errorf("doc %d (%s): got %+v, want %+v", i, docs[i].Source.IP, docs[i].Source, want[i])
		}
	}
}

// TestDBIPLite: DB-IP's Lite databases have GeoLite2's record layout under
// their own database types.
func TestDBIPLite(t *testing.T) {
	dir := t.TempDir()
	city := geoiptest.WriteCity(t, dir, "DBIP-City-Lite", geoiptest.City{Network: "192.0.2.0/24", City: "Zurich", CountryISOCode: "CH", Country: "Switzerland", Region: "Zurich", Lat: 47.3769, Lon: 8.5417})
	asn := geoiptest.WriteASN(t, dir, "DBIP-ASN-Lite (compat=GeoLite2-ASN)", geoiptest.ASN{Network: "192.0.2.0/24", Number: 64500, Organization: "Example Lite"})
	e := newEnricher(t, geoip.Config{CityDatabase: city, ASNDatabase: asn})
	docs := docsWith("192.0.2.1")
	e.Enrich(docs)
	// No subdivision code: a region name without region_iso_code.
	want := ecs.Source{
		IP:  "192.0.2.1",
		Geo: ecs.Geo{CityName: "Zurich", CountryISOCode: "CH", CountryName: "Switzerland", RegionName: "Zurich", Location: &ecs.GeoPoint{Lat: 47.3769, Lon: 8.5417}},
		AS:  ecs.AS{Number: 64500, Organization: ecs.ASOrganization{Name: "Example Lite"}},
	}
	if !reflect.DeepEqual(docs[0].Source, want) {
		t.Errorf("got %+v, want %+v", docs[0].Source, want)
	}
	got := e.Databases()
	wantDBs := []geoip.Database{
		{Kind: "city", Type: "DBIP-City-Lite", Built: time.Unix(geoiptest.BuildEpoch, 0).UTC()},
		{Kind: "asn", Type: "DBIP-ASN-Lite (compat=GeoLite2-ASN)", Built: time.Unix(geoiptest.BuildEpoch, 0).UTC()},
	}
	if !reflect.DeepEqual(got, wantDBs) {
		t.Errorf("Databases() = %+v, want %+v", got, wantDBs)
	}
}

func TestOnlyOneDatabase(t *testing.T) {
	city, asn := geoiptest.Sample(t, t.TempDir())
	docs := docsWith("192.0.2.44")
	newEnricher(t, geoip.Config{ASNDatabase: asn}).Enrich(docs)
	if !reflect.DeepEqual(docs[0].Source.Geo, ecs.Geo{}) || docs[0].Source.AS.Number != 64496 {
		t.Errorf("ASN only: %+v", docs[0].Source)
	}
	docs = docsWith("192.0.2.44")
	newEnricher(t, geoip.Config{CityDatabase: city}).Enrich(docs)
	if docs[0].Source.AS != (ecs.AS{}) || docs[0].Source.Geo.CityName != "Montreal" {
		t.Errorf("city only: %+v", docs[0].Source)
	}
}

// TestNoDatabaseNoFields: with no database configured the section is off
// and an enricher made from it changes nothing.
func TestNoDatabaseNoFields(t *testing.T) {
	cfg := geoip.Config{}
	if cfg.Enabled() || len(cfg.Validate()) != 0 {
		t.Fatalf("empty config: enabled %v, problems %v", cfg.Enabled(), cfg.Validate())
	}
	docs := docsWith("192.0.2.44")
	newEnricher(t, cfg).Enrich(docs)
	if !reflect.DeepEqual(docs, docsWith("192.0.2.44")) {
		t.Errorf("changed: %+v", docs[0].Source)
	}
}

// TestDeterministic: the same database file gives byte-identical documents
// across enrichers and runs.
func TestDeterministic(t *testing.T) {
	city, asn := geoiptest.Sample(t, t.TempDir())
	var outs []string
	for range 3 {
		e := newEnricher(t, geoip.Config{CityDatabase: city, ASNDatabase: asn})
		docs := docsWith("192.0.2.44", "2001:db8::1", "198.51.100.200")
		e.Enrich(docs)
		var b []byte
		for i := range docs {
			b = docs[i].AppendJSON(b)
		}
		outs = append(outs, string(b))
	}
	if outs[0] != outs[1] || outs[1] != outs[2] {
		t.Errorf("outputs differ:\n%s\n%s\n%s", outs[0], outs[1], outs[2])
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	city, asn := geoiptest.Sample(t, dir)
	empty := filepath.Join(dir, "empty.mmdb")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.mmdb")
	if err := os.WriteFile(garbage, []byte("not a MaxMind DB file at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg  geoip.Config
		want string
	}{
		{geoip.Config{CityDatabase: filepath.Join(dir, "missing.mmdb")}, "city_database: open"},
		{geoip.Config{ASNDatabase: empty}, "asn_database: open"},
		{geoip.Config{CityDatabase: garbage}, "city_database: open"},
		{geoip.Config{CityDatabase: asn}, "city_database: " + asn + " is an ASN database"},
		{geoip.Config{ASNDatabase: city}, "asn_database: " + city + ` is a "GeoLite2-City" database`},
		{geoip.Config{CityDatabase: city, ASNDatabase: garbage}, "asn_database: open"},
	} {
		e, err := geoip.New(c.cfg)
		if err == nil {
			_ = e.Close()
			t.Errorf("%+v: no error", c.cfg)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%+v: %v, want prefix %q", c.cfg, err, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  geoip.Config
		want []string
	}{
		{geoip.Config{CityDatabase: "/a", ASNDatabase: "/b"}, nil},
		{geoip.Config{CityDatabase: " "}, []string{"city_database:"}},
		{geoip.Config{CityDatabase: "/a", ASNDatabase: "/a"}, []string{"asn_database:"}},
	} {
		errs := c.cfg.Validate()
		if len(errs) != len(c.want) {
			t.Errorf("%+v: %v, want %v", c.cfg, errs, c.want)
			continue
		}
		for i, e := range errs {
			if !strings.HasPrefix(e.Error(), c.want[i]) {
				t.Errorf("%+v: %q, want prefix %q", c.cfg, e, c.want[i])
			}
		}
	}
}

func BenchmarkEnrich(b *testing.B) {
	dir := b.TempDir()
	city, asn := geoiptest.Sample(b, dir)
	e, err := geoip.New(geoip.Config{CityDatabase: city, ASNDatabase: asn})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	docs := docsWith("192.0.2.44", "198.51.100.7", "2001:db8:aa::e", "100.64.0.1")
	b.ReportAllocs()
	for b.Loop() {
		for i := range docs {
			docs[i].Source = ecs.Source{IP: docs[i].Source.IP}
		}
		e.Enrich(docs)
	}
}
