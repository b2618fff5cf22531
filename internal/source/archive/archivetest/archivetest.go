// Package archivetest generates storage-account archives of Entra audit
// logs for tests and benchmarks: one PT1H.json per hour of a tenant,
// one record per line (the generator's realistic mix of audit and
// sign-in records, a share of them SSPR events), with hours that have no
// blob and blobs that are empty, and uploads them as append blobs the
// way diagnostic settings write them. It knows exactly what it wrote:
// records by hour, every SSPR event id.
package archivetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/sspr-exporter/sspr-exporter/internal/entra"
	"github.com/sspr-exporter/sspr-exporter/internal/gen"
)

// Layouts of the blob names.
const (
	LayoutTenantID   = "tenantId"   // tenantId=<id>/y=.../PT1H.json
	LayoutResourceID = "resourceId" // resourceId=/tenants/<id>/providers/Microsoft.aadiam/y=.../PT1H.json
)

// Options shape an archive.
type Options struct {
	Tenant string
	Layout string // LayoutTenantID (default) or LayoutResourceID
	From   time.Time
	Hours  int
	// Users scales the traffic: records per hour follow a working day
	// (a night at a tenth of the day's peak), about PerUserDay records per
	// user per day in all.
	Users      int
	PerUserDay float64
	SSPRShare  float64 // share of records that are SSPR events (gen's mix), e.g. 0.02
	Seed       uint64
	// Missing hours get no blob; Empty hours get an empty blob.
	Missing, Empty map[int]bool
	// CRLF ends lines with CR LF, as some archives do; the first blob then
	// also starts with a byte-order mark.
	CRLF bool
}

// Blob is one generated PT1H.json.
type Blob struct {
	Name    string
	Hour    time.Time
	Data    []byte
	Records int
}

// Archive is what was generated.
type Archive struct {
	Tenant  string
	Blobs   []Blob
	SSPRIDs []string
	Records int
	// ByHour counts the records of each hour's blob.
	ByHour map[time.Time]int
}

// Name is the blob name of tenant's hour in a layout.
func Name(layout, tenant string, hour time.Time) string {
	h := hour.UTC()
	tail := fmt.Sprintf("y=%04d/m=%02d/d=%02d/h=%02d/m=00/PT1H.json", h.Year(), int(h.Month()), h.Day(), h.Hour())
	if layout == LayoutResourceID {
		return "resourceId=/tenants/" + tenant + "/providers/Microsoft.aadiam/" + tail
	}
	return "tenantId=" + tenant + "/" + tail
}

// PerHour is how many records the hour h gets for users users at
// perUserDay records each per day: a working day's curve in UTC.
func PerHour(users int, perUserDay float64, h time.Time) int {
	day := float64(users) * perUserDay
	// Weights: a night floor plus a bump around 13:00, summing to ~24.
	x := float64(h.UTC().Hour())
	w := 0.1 + 0.9*math.Exp(-math.Pow((x-13)/4, 2))
	return int(math.Round(day * w / 9.4))
}

// Generate writes the archive in memory.
func Generate(o Options) (Archive, error) {
	if o.Layout == "" {
		o.Layout = LayoutTenantID
	}
	if o.PerUserDay == 0 {
		o.PerUserDay = 2
	}
	a := Archive{Tenant: o.Tenant, ByHour: map[time.Time]int{}}
	for i := range o.Hours {
		h := o.From.UTC().Truncate(time.Hour).Add(time.Duration(i) * time.Hour)
		if o.Missing[i] {
			continue
		}
		b := Blob{Name: Name(o.Layout, o.Tenant, h), Hour: h}
		if n := PerHour(o.Users, o.PerUserDay, h); !o.Empty[i] && n > 0 {
			data, ids, err := hour(o, h, n, uint64(i), len(a.Blobs) == 0)
			if err != nil {
				return a, err
			}
			b.Data, b.Records = data, n
			a.SSPRIDs = append(a.SSPRIDs, ids...)
		}
		a.Records += b.Records
		a.ByHour[h] = b.Records
		a.Blobs = append(a.Blobs, b)
	}
	return a, nil
}

// hour is one blob's lines: gen's records of one body, one per line.
func hour(o Options, h time.Time, n int, i uint64, first bool) ([]byte, []string, error) {
	var body bytes.Buffer
	st, err := gen.Write(&body, gen.Options{Records: n, PerBody: n, SSPRShare: o.SSPRShare, Seed: o.Seed*1_000_003 + i, Start: h.Add(time.Second), TenantID: o.Tenant}, true)
	if err != nil {
		return nil, nil, err
	}
	eol := []byte("\n")
	var out bytes.Buffer
	if o.CRLF {
		eol = []byte("\r\n")
		if first {
			out.WriteString("\uFEFF")
		}
	}
	sc := entra.NewBytesScanner(body.Bytes(), 0)
	count := 0
	for {
		v, err := sc.Next()
		if err == io.EOF {
			break
		}
		if err != nil || v.Err != nil {
			return nil, nil, fmt.Errorf("generated body does not scan: %v %v", err, v.Err)
		}
		_ = v.Records(func(r entra.RawRecord) error {
			out.Write(r.Data)
			out.Write(eol)
			count++
			return nil
		})
	}
	if count != n {
		return nil, nil, fmt.Errorf("generated %d records, want %d", count, n)
	}
	return out.Bytes(), st.SSPRIDs, nil
}

// maxAppend is the largest block one append writes.
const maxAppend = 4 << 20

// Upload creates the container (if needed) and writes every blob as an
// append blob, in blocks of whole lines as diagnostic settings append.
func (a Archive) Upload(ctx context.Context, cc *container.Client) error {
	if _, err := cc.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return fmt.Errorf("create container: %w", err)
	}
	sem := make(chan struct{}, 4)
	errs := make(chan error, len(a.Blobs))
	var wg sync.WaitGroup
	for _, b := range a.Blobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs <- Append(ctx, cc, b.Name, b.Data, true)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Append appends data to the append blob name (creating it first when
// create), in blocks that end at line ends.
func Append(ctx context.Context, cc *container.Client, name string, data []byte, create bool) error {
	ab := cc.NewAppendBlobClient(name)
	if create {
		if _, err := ab.Create(ctx, nil); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
	}
	for len(data) > 0 {
		n := min(len(data), maxAppend)
		if n < len(data) {
			if i := bytes.LastIndexByte(data[:n], '\n'); i >= 0 {
				n = i + 1
			}
		}
		if _, err := ab.AppendBlock(ctx, streaming.NopCloser(bytes.NewReader(data[:n])), nil); err != nil {
			return fmt.Errorf("append %s: %w", name, err)
		}
		data = data[n:]
	}
	return nil
}

// Lines are the archive's records, one JSON value each, in order.
func (a Archive) Lines() [][]byte {
	var out [][]byte
	for _, b := range a.Blobs {
		for line := range bytes.Lines(b.Data) {
			if r := bytes.TrimSpace(bytes.TrimPrefix(line, []byte("\uFEFF"))); len(r) > 0 {
				out = append(out, r)
			}
		}
	}
	return out
}

// Hours lists the hours of the archive that have records, sorted.
func (a Archive) Hours() []time.Time {
	var out []time.Time
	for h, n := range a.ByHour {
		if n > 0 {
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}
