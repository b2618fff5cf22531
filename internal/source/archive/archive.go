// Package archive reads Microsoft Entra audit logs archived by a
// diagnostic setting to a storage account, for a backfill: the blobs
// insights-logs-auditlogs/tenantId=<id>/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json
// (and the older resourceId=/tenants/<id>/providers/microsoft.aadiam/...
// layout) of the range's hours, several at once, one record per line.
// Each blob is checkpointed by the line and byte its delivered part ends
// at, and read again from its start when its ETag changed.
package archive

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/sspr-exporter/sspr-exporter/internal/azcred"
	"github.com/sspr-exporter/sspr-exporter/internal/backfill"
	"github.com/sspr-exporter/sspr-exporter/internal/blobconn"
	"github.com/sspr-exporter/sspr-exporter/internal/entra"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// Options are what a Reader reads besides its Config.
type Options struct {
	Range backfill.Range
	// MaxBodyBytes is the longest line held in memory (decode.max_body_bytes).
	MaxBodyBytes int
	// ChunkBytes is the input one chunk holds at most (default 1 MiB).
	ChunkBytes int
	Logger     *slog.Logger
}

// Reader reads the archive's blobs of a range.
type Reader struct {
	cfg    Config
	opts   Options
	client *container.Client
	source string
	logger *slog.Logger
	blocks sync.Pool
}

// New returns a reader of cfg's container. It requests nothing yet.
func New(cfg Config, o Options) (*Reader, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = entra.DefaultMaxBodyBytes
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = 1 << 20
	}
	hc, err := azcred.HTTPClient(cfg.CAFile, 0)
	if err != nil {
		return nil, err
	}
	retry := policy.RetryOptions{MaxRetries: int32(cfg.MaxRetries)}
	if cfg.MaxRetries == 0 {
		retry.MaxRetries = -1
	}
	cc, err := cfg.account().Client(hc, retry)
	if err != nil {
		return nil, err
	}
	r := &Reader{cfg: cfg, opts: o, client: cc, logger: o.Logger}
	r.source = blobconn.URL(cc.URL())
	if cfg.Prefix != "" {
		r.source += " prefix " + cfg.Prefix
	}
	return r, nil
}

// Source names what the reader reads, for the state file.
func (r *Reader) Source() string { return r.source }

// job is a blob to read.
type job struct {
	unit   backfill.Unit
	resume backfill.Resume
}

// Read lists the blobs of the range and reads them with cfg.Workers
// workers. It returns once every worker has.
func (r *Reader) Read(ctx context.Context, feed backfill.Feed) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan job, r.cfg.Workers)
	var wg sync.WaitGroup
	errc := make(chan error, r.cfg.Workers+1)
	for range r.cfg.Workers {
		wg.Go(func() {
			for j := range jobs {
				if err := r.readBlob(ctx, feed, j); err != nil {
					errc <- err
					cancel()
					return
				}
			}
		})
	}
	err := r.list(ctx, feed, jobs)
	close(jobs)
	wg.Wait()
	if err != nil && ctx.Err() == nil {
		return err
	}
	select {
	case werr := <-errc:
		return werr
	default:
	}
	return err
}

// list finds the blobs of the range, begins each in the feed and queues
// the ones to read.
func (r *Reader) list(ctx context.Context, feed backfill.Feed, jobs chan<- job) error {
	bases, err := r.bases(ctx)
	if err != nil {
		return err
	}
	if len(bases) == 0 {
		r.logger.Warn("archive: no blob of the y=/m=/d=/h= layout found", "container", r.source)
	}
	for _, b := range bases {
		feed.Tenant(tenantOf(b))
	}
	rng := r.opts.Range
	first := rng.From.UTC().Truncate(time.Hour)
	for _, base := range bases {
		tenant := tenantOf(base)
		for d := time.Date(first.Year(), first.Month(), first.Day(), 0, 0, 0, 0, time.UTC); d.Before(rng.To); d = d.AddDate(0, 0, 1) {
			prefix := fmt.Sprintf("%sy=%04d/m=%02d/d=%02d/", base, d.Year(), int(d.Month()), d.Day())
			pager := r.client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
			for pager.More() {
				page, err := pager.NextPage(ctx)
				if err != nil {
					return fmt.Errorf("list %s: %w", prefix, storageError(err))
				}
				for _, it := range page.Segment.BlobItems {
					u, ok := r.unit(it, prefix, d, tenant)
					if !ok || u.From.Before(first) || !u.From.Before(rng.To) {
						continue
					}
					res, todo := feed.Begin(u)
					if !todo {
						continue
					}
					select {
					case jobs <- job{unit: u, resume: res}:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
		}
	}
	feed.Planned()
	return nil
}

// hourRE is the rest of a blob's name below its day.
var hourRE = regexp.MustCompile(`^h=(\d\d)/m=00/PT1H\.json$`)

func (r *Reader) unit(it *container.BlobItem, prefix string, day time.Time, tenant string) (backfill.Unit, bool) {
	if it.Name == nil || it.Properties == nil {
		return backfill.Unit{}, false
	}
	m := hourRE.FindStringSubmatch(strings.TrimPrefix(*it.Name, prefix))
	if m == nil {
		r.logger.Debug("archive: blob outside the layout ignored", "blob", *it.Name)
		return backfill.Unit{}, false
	}
	h := int(m[1][0]-'0')*10 + int(m[1][1]-'0')
	if h > 23 {
		return backfill.Unit{}, false
	}
	from := day.Add(time.Duration(h) * time.Hour)
	u := backfill.Unit{Key: *it.Name, Tenant: tenant, From: from, To: from.Add(time.Hour)}
	p := it.Properties
	if p.ETag != nil {
		u.Version = string(*p.ETag)
	}
	if p.LastModified != nil {
		u.Modified = *p.LastModified
	}
	if p.ContentLength != nil {
		u.Size = *p.ContentLength
	}
	return u, true
}

// maxDepth bounds how deep bases are looked for.
const maxDepth = 10

// bases are the name prefixes under which y=YYYY/ folders sit: one per
// tenant (tenantId=<id>/, resourceId=/tenants/<id>/providers/...), found
// by listing the container level by level.
func (r *Reader) bases(ctx context.Context) ([]string, error) {
	start := r.cfg.Prefix
	if i := strings.Index(start, "y="); i >= 0 && (i == 0 || start[i-1] == '/') {
		return []string{start[:i]}, nil
	}
	var out []string
	level := []string{start}
	for depth := 0; len(level) > 0 && depth < maxDepth; depth++ {
		var next []string
		for _, p := range level {
			children, err := r.children(ctx, p)
			if err != nil {
				return nil, err
			}
			isBase := false
			for _, c := range children {
				if strings.HasPrefix(c[len(p):], "y=") {
					isBase = true
					break
				}
			}
			if isBase {
				out = append(out, p)
				continue
			}
			next = append(next, children...)
		}
		level = next
	}
	slices.Sort(out)
	return out, nil
}

// children are the virtual folders right below prefix.
func (r *Reader) children(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	opts := &container.ListBlobsHierarchyOptions{}
	if prefix != "" {
		opts.Prefix = &prefix
	}
	pager := r.client.NewListBlobsHierarchyPager("/", opts)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", r.source, storageError(err))
		}
		for _, p := range page.Segment.BlobPrefixes {
			if p.Name != nil {
				out = append(out, *p.Name)
			}
		}
	}
	return out, nil
}

var (
	tenantIDRE  = regexp.MustCompile(`(?i)(?:^|/)tenantId=([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/`)
	resourceRE  = regexp.MustCompile(`(?i)/tenants/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/`)
	errNotFound = errors.New("container not found")
)

// tenantOf is the tenant a base names, lower-cased; "" when none.
func tenantOf(base string) string {
	if m := tenantIDRE.FindStringSubmatch(base); m != nil {
		return strings.ToLower(m[1])
	}
	if m := resourceRE.FindStringSubmatch("/" + base); m != nil {
		return strings.ToLower(m[1])
	}
	return ""
}

// storageError says in one line what a storage failure means.
func storageError(err error) error {
	switch {
	case bloberror.HasCode(err, bloberror.ContainerNotFound):
		return fmt.Errorf("%w: check container", errNotFound)
	case bloberror.HasCode(err, bloberror.AuthenticationFailed, bloberror.AuthorizationFailure, bloberror.AuthorizationPermissionMismatch):
		return errors.New("access refused: the identity needs Storage Blob Data Reader on the container (or check connection_string)")
	}
	return secret.RedactError(err)
}

// readBlob reads one blob, again from its start when it changed since it
// was listed.
func (r *Reader) readBlob(ctx context.Context, feed backfill.Feed, j job) error {
	bc := r.client.NewBlobClient(j.unit.Key)
	for attempt := 0; ; attempt++ {
		err := r.readFrom(ctx, feed, bc, j)
		if err == nil || attempt >= 3 || !bloberror.HasCode(err, bloberror.ConditionNotMet) {
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("read %s: %w", j.unit.Key, storageError(err))
			}
			return err
		}
		props, perr := bc.GetProperties(ctx, nil)
		if perr != nil {
			return fmt.Errorf("read %s: %w", j.unit.Key, storageError(perr))
		}
		if props.ETag != nil {
			j.unit.Version = string(*props.ETag)
		}
		if props.ContentLength != nil {
			j.unit.Size = *props.ContentLength
		}
		if props.LastModified != nil {
			j.unit.Modified = *props.LastModified
		}
		res, todo := feed.Begin(j.unit)
		if !todo {
			return nil
		}
		j.resume = res
	}
}

// readFrom reads the blob's version j.unit.Version from j.resume on.
func (r *Reader) readFrom(ctx context.Context, feed backfill.Feed, bc *blob.Client, j job) error {
	cb := r.newChunk(j.unit.Key, j.resume)
	if j.resume.Offset > 0 && j.resume.Offset >= j.unit.Size {
		// Everything was delivered but the end was not recorded.
		return cb.flush(ctx, feed, true)
	}
	etag := azcore.ETag(j.unit.Version)
	resp, err := bc.DownloadStream(ctx, &blob.DownloadStreamOptions{
		Range:            blob.HTTPRange{Offset: j.resume.Offset},
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &etag}},
	})
	if err != nil {
		cb.discard()
		return err
	}
	body := resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 5})
	defer body.Close()
	br := readers.Get().(*bufio.Reader)
	br.Reset(body)
	defer func() {
		br.Reset(nil)
		readers.Put(br)
	}()
	lr := lineReader{r: br, max: r.opts.MaxBodyBytes}
	for {
		line, tooLarge, err := lr.next()
		if len(line) > 0 || tooLarge != nil {
			if ferr := cb.add(ctx, feed, line, tooLarge, lr.consumed); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return cb.flush(ctx, feed, true)
		}
		if err != nil {
			cb.discard()
			return err
		}
	}
}

// readers are the buffered readers of blobs being read, reused: a blob
// of an hour is often smaller than the buffer.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 256<<10) }}

// lineReader splits a stream into lines, each with its line ending.
type lineReader struct {
	r        *bufio.Reader
	max      int
	acc      []byte
	consumed int64 // bytes of the last line returned
}

// keep is how much of an oversize line is kept for its dead letter.
const keep = 64 << 10

// next returns the next line (or, at the end, what is left), or, for a
// line longer than max, its first bytes with its size and digest.
func (l *lineReader) next() ([]byte, *entra.TooLargeError, error) {
	l.acc = l.acc[:0]
	l.consumed = 0
	for {
		frag, err := l.r.ReadSlice('\n')
		l.consumed += int64(len(frag))
		if len(l.acc)+len(frag) > l.max {
			return l.oversize(frag, err)
		}
		if len(l.acc) == 0 && err == nil {
			return frag, nil, nil
		}
		l.acc = append(l.acc, frag...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return l.acc, nil, err
		}
	}
}

// oversize reads the rest of a line too long to hold, hashing it, and
// returns its first bytes.
func (l *lineReader) oversize(frag []byte, err error) ([]byte, *entra.TooLargeError, error) {
	h := sha256.New()
	h.Write(l.acc)
	h.Write(frag)
	l.acc = append(l.acc, frag[:min(len(frag), max(0, keep-len(l.acc)))]...)
	l.acc = l.acc[:min(len(l.acc), keep)]
	for errors.Is(err, bufio.ErrBufferFull) {
		frag, err = l.r.ReadSlice('\n')
		l.consumed += int64(len(frag))
		h.Write(frag)
	}
	tl := &entra.TooLargeError{Size: l.consumed}
	copy(tl.SHA256[:], h.Sum(nil))
	return l.acc, tl, err
}

// chunkBuilder collects the bodies of one chunk, their bytes in one block.
type chunkBuilder struct {
	r      *Reader
	key    string
	file   string
	block  *[]byte
	bodies []stream.Body
	line   int64 // lines consumed up to the chunk's end
	offset int64 // bytes consumed up to the chunk's end
	bytes  int64 // bytes consumed by this chunk
}

func (r *Reader) newChunk(key string, from backfill.Resume) *chunkBuilder {
	b, _ := r.blocks.Get().(*[]byte)
	if b == nil {
		s := make([]byte, 0, r.opts.ChunkBytes)
		b = &s
	}
	*b = (*b)[:0]
	return &chunkBuilder{r: r, key: key, file: r.cfg.Container + "/" + key, block: b, line: from.Line, offset: from.Offset}
}

// add takes one line: blank lines only move the position; a line's
// records become bodies, a line that does not parse one dead letter, a
// line too long to hold one dead letter with its first bytes.
func (c *chunkBuilder) add(ctx context.Context, feed backfill.Feed, line []byte, tooLarge *entra.TooLargeError, consumed int64) error {
	if len(*c.block) > 0 && len(*c.block)+len(line) > cap(*c.block) {
		if err := c.flush(ctx, feed, false); err != nil {
			return err
		}
		*c = *c.r.newChunk(c.key, backfill.Resume{Line: c.line, Offset: c.offset})
	}
	c.line++
	c.offset += consumed
	c.bytes += consumed
	pos := stream.Position{Kind: "blob", File: c.file, Line: c.line}
	if tooLarge != nil {
		c.bodies = append(c.bodies, stream.Body{Data: bytes.Clone(line), Pos: pos, Err: tooLarge})
		return nil
	}
	if len(bytes.TrimSpace(line)) == 0 {
		return nil
	}
	// A line longer than a block grows it: the bodies already cut keep
	// the old array.
	start := len(*c.block)
	*c.block = append(*c.block, line...)
	data := (*c.block)[start:len(*c.block):len(*c.block)]
	sc := entra.NewBytesScanner(data, c.r.opts.MaxBodyBytes)
	for {
		v, err := sc.Next()
		if err != nil {
			return nil
		}
		if v.Err != nil {
			c.bodies = append(c.bodies, stream.Body{Data: v.Data, Pos: pos, Err: v.Err})
			continue
		}
		_ = v.Records(func(rec entra.RawRecord) error {
			c.bodies = append(c.bodies, stream.Body{Data: rec.Data, Pos: pos, Err: rec.Err, Form: stream.FormRecord})
			return nil
		})
	}
}

// flush emits the chunk; final marks the blob's end.
func (c *chunkBuilder) flush(ctx context.Context, feed backfill.Feed, final bool) error {
	block, r := c.block, c.r
	err := feed.Emit(ctx, backfill.Chunk{
		Unit: c.key, Bodies: c.bodies, Bytes: c.bytes, Final: final,
		End:     &backfill.Resume{Line: c.line, Offset: c.offset},
		Release: func() { r.putBlock(block) },
	})
	c.block, c.bodies = nil, nil
	return err
}

// discard gives the chunk's block back unused.
func (c *chunkBuilder) discard() {
	if c.block != nil {
		c.r.putBlock(c.block)
		c.block = nil
	}
}

// putBlock recycles a block of the usual size; one grown for a long line
// is left to the collector.
func (r *Reader) putBlock(b *[]byte) {
	if cap(*b) == r.opts.ChunkBytes {
		r.blocks.Put(b)
	}
}
