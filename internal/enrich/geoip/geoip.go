// Package geoip adds where an address is to the documents: source.geo.*
// from a city database and source.as.* from an ASN database, both MaxMind
// DB files the user provides (GeoLite2 or DB-IP Lite). A lookup is a pure
// function of the loaded file: the same file gives the same fields.
package geoip

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
)

// Config is the [enrich.geoip] section. Either database may be left out;
// with neither, documents get no geo fields.
type Config struct {
	// CityDatabase is a city (or country) database: GeoLite2-City,
	// GeoIP2-City, DB-IP's dbip-city-lite.
	CityDatabase string `toml:"city_database"`
	// ASNDatabase is an autonomous-system database: GeoLite2-ASN,
	// DB-IP's dbip-asn-lite.
	ASNDatabase string `toml:"asn_database"`
}

// Enabled reports whether a database is configured.
func (c Config) Enabled() bool { return c.CityDatabase != "" || c.ASNDatabase != "" }

// Validate checks the section without opening the files (New does).
func (c Config) Validate() []error {
	var errs []error
	for _, f := range []struct{ key, path string }{{"city_database", c.CityDatabase}, {"asn_database", c.ASNDatabase}} {
		if f.path != "" && strings.TrimSpace(f.path) == "" {
			errs = append(errs, fmt.Errorf("%s: must be a file path or empty", f.key))
		}
	}
	if c.CityDatabase != "" && c.CityDatabase == c.ASNDatabase {
		errs = append(errs, errors.New("asn_database: must not be the city_database file"))
	}
	return errs
}

// Database describes one opened database, for the build-date metric.
type Database struct {
	Kind  string    // "city" or "asn"
	Type  string    // the file's database_type, e.g. GeoLite2-City
	Built time.Time // the file's build date
}

// Enricher looks up source.ip in the configured databases.
type Enricher struct {
	city, asn *maxminddb.Reader
	dbs       []Database
}

// New opens the configured databases. The error names the key whose file
// could not be used.
func New(cfg Config) (*Enricher, error) {
	e := &Enricher{}
	var err error
	if cfg.CityDatabase != "" {
		if e.city, err = open(cfg.CityDatabase, "city"); err != nil {
			return nil, fmt.Errorf("city_database: %w", err)
		}
		e.dbs = append(e.dbs, describe("city", e.city))
	}
	if cfg.ASNDatabase != "" {
		if e.asn, err = open(cfg.ASNDatabase, "asn"); err != nil {
			_ = e.Close()
			return nil, fmt.Errorf("asn_database: %w", err)
		}
		e.dbs = append(e.dbs, describe("asn", e.asn))
	}
	return e, nil
}

func open(path, kind string) (*maxminddb.Reader, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	isASN := strings.Contains(strings.ToUpper(r.Metadata.DatabaseType), "ASN")
	if kind == "asn" && !isASN {
		_ = r.Close()
		return nil, fmt.Errorf("%s is a %q database, not an ASN database", path, r.Metadata.DatabaseType)
	}
	if kind == "city" && isASN {
		_ = r.Close()
		return nil, fmt.Errorf("%s is an ASN database (%q), not a city database", path, r.Metadata.DatabaseType)
	}
	return r, nil
}

func describe(kind string, r *maxminddb.Reader) Database {
	return Database{Kind: kind, Type: r.Metadata.DatabaseType, Built: r.Metadata.BuildTime().UTC()}
}

// Databases lists the opened databases.
func (e *Enricher) Databases() []Database { return e.dbs }

// Close releases the databases.
func (e *Enricher) Close() error {
	var errs []error
	for _, r := range []*maxminddb.Reader{e.city, e.asn} {
		if r != nil {
			errs = append(errs, r.Close())
		}
	}
	return errors.Join(errs...)
}

// Enrich sets source.geo and source.as of every document with a public
// source.ip found in the databases; other documents are left as they are.
func (e *Enricher) Enrich(docs []ecs.Event) {
	for i := range docs {
		e.enrichOne(&docs[i].Source)
	}
}

func (e *Enricher) enrichOne(src *ecs.Source) {
	if src.IP == "" {
		return
	}
	addr, err := netip.ParseAddr(src.IP)
	if err != nil {
		return
	}
	if e.city != nil {
		src.Geo = lookupCity(e.city, addr)
	}
	if e.asn != nil {
		src.AS = lookupASN(e.asn, addr)
	}
}

// cityRecord is the part of a GeoLite2-City (and dbip-city-lite) record
// the documents use.
type cityRecord struct {
	City struct {
		Names names `maxminddb:"names"`
	} `maxminddb:"city"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
		Names   names  `maxminddb:"names"`
	} `maxminddb:"country"`
	Subdivisions []struct {
		ISOCode string `maxminddb:"iso_code"`
		Names   names  `maxminddb:"names"`
	} `maxminddb:"subdivisions"`
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
}

// names keeps the English name only: decoding into a struct skips the
// other languages instead of building a map of them on every lookup.
type names struct {
	EN string `maxminddb:"en"`
}

// lookupCity reads the English names, as Elastic's GeoIP processor does;
// a record it cannot decode gives no fields rather than a partial set.
func lookupCity(r *maxminddb.Reader, addr netip.Addr) ecs.Geo {
	var rec cityRecord
	if err := r.Lookup(addr).Decode(&rec); err != nil {
		return ecs.Geo{}
	}
	g := ecs.Geo{
		CityName:       clean(rec.City.Names.EN),
		CountryISOCode: clean(rec.Country.ISOCode),
		CountryName:    clean(rec.Country.Names.EN),
	}
	if len(rec.Subdivisions) > 0 {
		sub := rec.Subdivisions[0] // the largest subdivision comes first
		g.RegionName = clean(sub.Names.EN)
		if code := clean(sub.ISOCode); code != "" && g.CountryISOCode != "" {
			g.RegionISOCode = g.CountryISOCode + "-" + code // ISO 3166-2, as ECS shows it (CA-QC)
		}
	}
	if lat, lon := rec.Location.Latitude, rec.Location.Longitude; lat != nil && lon != nil && validCoordinates(*lat, *lon) {
		g.Location = &ecs.GeoPoint{Lat: *lat, Lon: *lon}
	}
	return g
}

func validCoordinates(lat, lon float64) bool {
	return !math.IsNaN(lat) && !math.IsNaN(lon) && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}

type asnRecord struct {
	Number       uint32 `maxminddb:"autonomous_system_number"`
	Organization string `maxminddb:"autonomous_system_organization"`
}

func lookupASN(r *maxminddb.Reader, addr netip.Addr) ecs.AS {
	var rec asnRecord
	if err := r.Lookup(addr).Decode(&rec); err != nil || rec.Number == 0 {
		return ecs.AS{}
	}
	return ecs.AS{Number: int64(rec.Number), Organization: ecs.ASOrganization{Name: clean(rec.Organization)}}
}

// clean trims a database string; documents never carry blank values.
func clean(s string) string { return strings.TrimSpace(s) }
