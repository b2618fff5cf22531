package archivetest

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is an in-memory double of the Blob service's read side (List
// Blobs, flat and by delimiter, Get Blob with a range and If-Match, Get
// Blob Properties) for one account, answering as the service does. It
// serves an archive as fast as the exporter can read it, so that a
// benchmark measures the exporter, not a storage emulator. Requests are
// not authenticated.
type Server struct {
	srv *httptest.Server

	mu    sync.RWMutex
	blobs map[string]map[string]*stored // container → name → blob
}

type stored struct {
	data     []byte
	etag     string
	modified time.Time
}

// Account is the double's account name.
const Account = "devstoreaccount1"

// accountKey is a well-formed key; the double checks no signature.
const accountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

// NewServer starts a double, closed when the test ends.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{blobs: map[string]map[string]*stored{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.srv.Close)
	return s
}

// ConnectionString is a connection string for the double's account.
func (s *Server) ConnectionString() string {
	return "DefaultEndpointsProtocol=http;AccountName=" + Account + ";AccountKey=" + accountKey + ";BlobEndpoint=" + s.srv.URL + "/" + Account + ";"
}

// Put stores the archive's blobs in container.
func (s *Server) Put(container string, a Archive) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.blobs[container]
	if c == nil {
		c = map[string]*stored{}
		s.blobs[container] = c
	}
	for i, b := range a.Blobs {
		c[b.Name] = &stored{data: b.Data, etag: fmt.Sprintf(`"0x8DD%012X"`, i+1), modified: b.Hour.Add(time.Hour)}
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
	if len(parts) < 2 || parts[0] != Account {
		blobError(w, http.StatusBadRequest, "InvalidUri")
		return
	}
	q := r.URL.Query()
	if len(parts) == 2 && q.Get("comp") == "list" {
		s.list(w, parts[1], q.Get("prefix"), q.Get("delimiter"), q.Get("marker"))
		return
	}
	if len(parts) != 3 || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		blobError(w, http.StatusBadRequest, "UnsupportedHttpVerb")
		return
	}
	s.get(w, r, parts[1], parts[2])
}

func blobError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("x-ms-error-code", code)
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, code)
}

type listResult struct {
	XMLName       xml.Name   `xml:"EnumerationResults"`
	ContainerName string     `xml:"ContainerName,attr"`
	Prefix        string     `xml:"Prefix"`
	Delimiter     string     `xml:"Delimiter,omitempty"`
	MaxResults    int        `xml:"MaxResults"`
	Blobs         listBlobs  `xml:"Blobs"`
	NextMarker    string     `xml:"NextMarker"`
	Marker        *xmlString `xml:"Marker"`
}

type xmlString struct {
	V string `xml:",chardata"`
}

type listBlobs struct {
	Blob       []listBlob   `xml:"Blob"`
	BlobPrefix []listPrefix `xml:"BlobPrefix"`
}

type listBlob struct {
	Name       string    `xml:"Name"`
	Properties blobProps `xml:"Properties"`
}

type blobProps struct {
	LastModified  string `xml:"Last-Modified"`
	Etag          string `xml:"Etag"`
	ContentLength int    `xml:"Content-Length"`
	ContentType   string `xml:"Content-Type"`
	BlobType      string `xml:"BlobType"`
}

type listPrefix struct {
	Name string `xml:"Name"`
}

// pageSize is the most entries of one listing page, as the service's.
const pageSize = 5000

func (s *Server) list(w http.ResponseWriter, container, prefix, delim, marker string) {
	s.mu.RLock()
	c, ok := s.blobs[container]
	var names []string
	for n := range c {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	s.mu.RUnlock()
	if !ok {
		blobError(w, http.StatusNotFound, "ContainerNotFound")
		return
	}
	slices.Sort(names)
	res := listResult{ContainerName: container, Prefix: prefix, Delimiter: delim, MaxResults: pageSize, Marker: &xmlString{V: marker}}
	seen := map[string]bool{}
	n := 0
	for _, name := range names {
		if name <= marker && marker != "" {
			continue
		}
		if n == pageSize {
			res.NextMarker = res.lastName()
			break
		}
		if delim != "" {
			if i := strings.Index(name[len(prefix):], delim); i >= 0 {
				p := name[:len(prefix)+i+len(delim)]
				if !seen[p] {
					seen[p] = true
					res.Blobs.BlobPrefix = append(res.Blobs.BlobPrefix, listPrefix{Name: p})
					n++
				}
				continue
			}
		}
		s.mu.RLock()
		b := c[name]
		s.mu.RUnlock()
		res.Blobs.Blob = append(res.Blobs.Blob, listBlob{Name: name, Properties: blobProps{
			LastModified: b.modified.UTC().Format(http.TimeFormat), Etag: b.etag, ContentLength: len(b.data),
			ContentType: "application/json", BlobType: "AppendBlob",
		}})
		n++
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-ms-version", "2025-01-05")
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(res)
}

func (r listResult) lastName() string {
	if n := len(r.Blobs.Blob); n > 0 {
		return r.Blobs.Blob[n-1].Name
	}
	return ""
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, container, name string) {
	s.mu.RLock()
	b := s.blobs[container][name]
	s.mu.RUnlock()
	if b == nil {
		blobError(w, http.StatusNotFound, "BlobNotFound")
		return
	}
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && m != b.etag {
		blobError(w, http.StatusPreconditionFailed, "ConditionNotMet")
		return
	}
	h := w.Header()
	h.Set("ETag", b.etag)
	h.Set("Last-Modified", b.modified.UTC().Format(http.TimeFormat))
	h.Set("x-ms-blob-type", "AppendBlob")
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Type", "application/json")
	start, end := 0, len(b.data)
	rng := r.Header.Get("x-ms-range")
	if rng == "" {
		rng = r.Header.Get("Range")
	}
	status := http.StatusOK
	if v, ok := strings.CutPrefix(rng, "bytes="); ok {
		from, to, _ := strings.Cut(v, "-")
		a, err := strconv.Atoi(from)
		if err != nil || a >= len(b.data) {
			h.Set("Content-Range", "bytes */"+strconv.Itoa(len(b.data)))
			blobError(w, http.StatusRequestedRangeNotSatisfiable, "InvalidRange")
			return
		}
		start = a
		if to != "" {
			if z, err := strconv.Atoi(to); err == nil && z+1 < end {
				end = z + 1
			}
		}
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, len(b.data)))
	}
	h.Set("Content-Length", strconv.Itoa(end-start))
	w.WriteHeader(status)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b.data[start:end])
	}
}
