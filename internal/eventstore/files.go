package eventstore

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/ecs"
)

// Files reads ECS NDJSON files written by the exporter's file output. The
// files are read in full for each Scan and the matching documents sorted,
// so memory grows with the matching documents, not with the files; a
// document that appears in several files (the same event.id) is handed out
// once, as the search outputs store it once.
type Files struct {
	Paths []string
}

// NewFiles returns a reader of the given files; each must be readable.
func NewFiles(paths ...string) (*Files, error) {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", p, err)
		}
		f.Close()
	}
	return &Files{Paths: paths}, nil
}

// Scan reads every file and hands out the matching documents in order.
func (r *Files) Scan(ctx context.Context, q Query, fn func(*ecs.Event) error) error {
	var docs []*ecs.Event
	seen := map[string]bool{}
	for _, p := range r.Paths {
		if err := readFile(ctx, p, func(e *ecs.Event) {
			if q.Match(e) && !seen[e.Event.ID] {
				seen[e.Event.ID] = true
				docs = append(docs, e)
			}
		}); err != nil {
			return err
		}
	}
	slices.SortFunc(docs, Compare)
	for _, e := range docs {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// readFile decodes each line of p as an ECS document.
func readFile(ctx context.Context, p string, fn func(*ecs.Event)) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("input %s: %w", p, err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	for line := int64(1); ; line++ {
		if line%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		b, err := br.ReadBytes('\n')
		if len(b) > 0 && !blank(b) {
			e := new(ecs.Event)
			if err := json.Unmarshal(b, e); err != nil {
				return fmt.Errorf("input %s:%d: not an ECS document: %w", p, line, err)
			}
			t, err := time.Parse(time.RFC3339Nano, e.Timestamp)
			if err != nil {
				return fmt.Errorf("input %s:%d: @timestamp: %w", p, line, err)
			}
			e.Time = t
			fn(e)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("input %s: %w", p, err)
		}
	}
}

func blank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// Describe lists each file with its size and SHA-256.
func (r *Files) Describe() Source {
	s := Source{Kind: "files"}
	for _, p := range r.Paths {
		f := File{Path: p}
		if fh, err := os.Open(p); err == nil {
			h := sha256.New()
			f.Size, _ = io.Copy(h, fh)
			fh.Close()
			f.SHA256 = hex.EncodeToString(h.Sum(nil))
		}
		s.Files = append(s.Files, f)
	}
	return s
}
