// Package deliver takes a report and its manifest, written as local files,
// to where a scheduled report goes: a directory, an Azure Blob Storage
// container or e-mail recipients.
package deliver

import (
	"context"
	"path/filepath"
	"strings"
	"time"
)

// Delivery is one report run's output, ready to deliver.
type Delivery struct {
	Name     string    // the [[reports]] entry's name
	Report   string    // path of the report file
	Manifest string    // path of its manifest
	From, To time.Time // the period the report covers, [From, To)
}

// files are the delivery's files in the order they are delivered: the
// manifest last, so a reader that sees it finds the report complete.
func (d Delivery) files() []string { return []string{d.Report, d.Manifest} }

// Deliverer sends a delivery to one destination.
type Deliverer interface {
	Deliver(ctx context.Context, d Delivery) error
	// Describe names the destination for logs, without credentials.
	Describe() string
}

// ContentType is the media type of a report or manifest file, by its
// extension.
func ContentType(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return "text/csv; charset=utf-8"
	case ".json":
		return "application/json"
	case ".html", ".htm":
		return "text/html; charset=utf-8"
	case ".xlsx":
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}
