// Package geoiptest writes small MaxMind DB files for tests, in the record
// layout of GeoLite2-City and GeoLite2-ASN (which DB-IP's Lite databases
// share), so that GeoIP enrichment is tested without downloading a
// database.
package geoiptest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// BuildEpoch is the build time written into every database, so that the
// files (and what is read from them) are the same on every run.
const BuildEpoch = 1764547200 // 2025-12-01T00:00:00Z

// City is one network of a city database.
type City struct {
	Network        string // CIDR
	City           string
	CountryISOCode string
	Country        string
	RegionISOCode  string // the subdivision's own code, as GeoLite2 stores it ("QC")
	Region         string
	Lat, Lon       float64
	NoLocation     bool // leave location out
}

// ASN is one network of an ASN database.
type ASN struct {
	Network      string
	Number       uint32
	Organization string
}

// WriteCity writes a city database of the given type (GeoLite2-City,
// DBIP-City-Lite...) into dir and returns its path.
func WriteCity(tb testing.TB, dir, databaseType string, cities ...City) string {
	tb.Helper()
	tree := newTree(tb, databaseType)
	for _, c := range cities {
		rec := mmdbtype.Map{}
		if c.City != "" {
			rec["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(c.City)}}
		}
		if c.CountryISOCode != "" || c.Country != "" {
			country := mmdbtype.Map{}
			if c.CountryISOCode != "" {
				country["iso_code"] = mmdbtype.String(c.CountryISOCode)
			}
			if c.Country != "" {
				country["names"] = mmdbtype.Map{"en": mmdbtype.String(c.Country), "de": mmdbtype.String(c.Country + " (de)")}
			}
			rec["country"] = country
		}
		if c.RegionISOCode != "" || c.Region != "" {
			sub := mmdbtype.Map{}
			if c.RegionISOCode != "" {
				sub["iso_code"] = mmdbtype.String(c.RegionISOCode)
			}
			if c.Region != "" {
				sub["names"] = mmdbtype.Map{"en": mmdbtype.String(c.Region)}
			}
			rec["subdivisions"] = mmdbtype.Slice{sub}
		}
		if !c.NoLocation {
			rec["location"] = mmdbtype.Map{
				"latitude":        mmdbtype.Float64(c.Lat),
				"longitude":       mmdbtype.Float64(c.Lon),
				"accuracy_radius": mmdbtype.Uint16(20),
			}
		}
		insert(tb, tree, c.Network, rec)
	}
	return write(tb, tree, filepath.Join(dir, databaseType+".mmdb"))
}

// WriteASN writes an ASN database of the given type (GeoLite2-ASN,
// DBIP-ASN-Lite...) into dir and returns its path.
func WriteASN(tb testing.TB, dir, databaseType string, asns ...ASN) string {
	tb.Helper()
	tree := newTree(tb, databaseType)
	for _, a := range asns {
		rec := mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(a.Number)}
		if a.Organization != "" {
			rec["autonomous_system_organization"] = mmdbtype.String(a.Organization)
		}
		insert(tb, tree, a.Network, rec)
	}
	return write(tb, tree, filepath.Join(dir, databaseType+".mmdb"))
}

func newTree(tb testing.TB, databaseType string) *mmdbwriter.Tree {
	tb.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: databaseType,
		Description:  map[string]string{"en": "test database"},
		Languages:    []string{"en", "de"},
		BuildEpoch:   BuildEpoch,
		RecordSize:   24,
		// Tests use the documentation ranges, which are reserved.
		IncludeReservedNetworks: true,
	})
	if err != nil {
		tb.Fatalf("mmdbwriter: %v", err)
	}
	return tree
}

func insert(tb testing.TB, tree *mmdbwriter.Tree, cidr string, rec mmdbtype.Map) {
	tb.Helper()
	_, network, err := net.ParseCIDR(cidr)
	if err != nil {
		tb.Fatalf("network %q: %v", cidr, err)
	}
	if err := tree.Insert(network, rec); err != nil {
		tb.Fatalf("insert %s: %v", cidr, err)
	}
}

func write(tb testing.TB, tree *mmdbwriter.Tree, path string) string {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		_ = f.Close()
		tb.Fatalf("write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// Sample is a city and an ASN database over the documentation ranges the
// project's test records use (192.0.2.0/24, 198.51.100.0/24,
// 203.0.113.0/24, 2001:db8::/32), written into dir.
func Sample(tb testing.TB, dir string) (city, asn string) {
	tb.Helper()
	city = WriteCity(tb, dir, "GeoLite2-City",
		City{Network: "192.0.2.0/24", City: "Montreal", CountryISOCode: "CA", Country: "Canada", RegionISOCode: "QC", Region: "Quebec", Lat: 45.505918, Lon: -73.61483},
		City{Network: "198.51.100.0/24", City: "Lyon", CountryISOCode: "FR", Country: "France", RegionISOCode: "ARA", Region: "Auvergne-Rhone-Alpes", Lat: 45.7578, Lon: 4.832},
		City{Network: "203.0.113.0/24", CountryISOCode: "JP", Country: "Japan", Lat: 35.69, Lon: 139.69},
		City{Network: "2001:db8::/32", City: "Oslo", CountryISOCode: "NO", Country: "Norway", RegionISOCode: "03", Region: "Oslo", Lat: 59.9133, Lon: 10.7389},
	)
	asn = WriteASN(tb, dir, "GeoLite2-ASN",
		ASN{Network: "192.0.2.0/24", Number: 64496, Organization: "Example Transit"},
		ASN{Network: "198.51.100.0/24", Number: 64497, Organization: "Example Access"},
		ASN{Network: "2001:db8::/32", Number: 64498},
	)
	return city, asn
}
