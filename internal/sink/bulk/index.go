package bulk

import (
	"strconv"
	"time"
)

// IndexName returns the index an event dated t goes to: the prefix and the
// first day of t's bucket in UTC, e.g. entra-sspr-2026.11.01 for a monthly
// bucket. The date suffix is what a lifecycle policy can count retention
// from (Elasticsearch's index.lifecycle.parse_origination_date reads it).
func IndexName(prefix, granularity string, t time.Time) string {
	y, m, d := bucketDate(granularity, t)
	b := make([]byte, 0, len(prefix)+11)
	b = append(b, prefix...)
	b = append(b, '-')
	// Four digits always: parse_origination_date wants -yyyy.MM.dd.
	for p := 1000; p > 1 && y < p; p /= 10 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, int64(y), 10)
	b = append(b, '.', byte('0'+m/10), byte('0'+m%10), '.', byte('0'+d/10), byte('0'+d%10))
	return string(b)
}

// BucketStart is UTC midnight of the first day of the bucket t falls in.
func BucketStart(granularity string, t time.Time) time.Time {
	y, m, d := bucketDate(granularity, t)
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// bucketDate is the first day, in UTC, of the bucket t falls in.
func bucketDate(granularity string, t time.Time) (int, time.Month, int) {
	y, m, d := t.UTC().Date()
	switch granularity {
	case Year:
		m, d = 1, 1
	case Day:
	default:
		d = 1
	}
	return y, m, d
}

// pastRetention reports whether the index an event dated t goes to has
// reached retention days of age at now, counted from its bucket's first
// day (the date in its name).
func pastRetention(granularity string, retentionDays int, t, now time.Time) bool {
	if retentionDays <= 0 {
		return false
	}
	deleteAt := BucketStart(granularity, t).Add(time.Duration(retentionDays) * 24 * time.Hour)
	return !now.Before(deleteAt)
}
