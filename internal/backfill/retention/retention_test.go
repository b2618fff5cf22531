package retention

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func monthly(t time.Time) time.Time {
	y, m, _ := t.UTC().Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
}

func TestCheck(t *testing.T) {
	p := []Policy{{Key: "output.elasticsearch.ilm.retention_days", Days: 30, Bucket: monthly}}
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	// November's index is deleted 30 days after November 1st: December 1st.
	err := Check(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), now, p)
	var ee *ExpiringError
	if !errors.As(err, &ee) || !ee.DeleteAt.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("November 30 with monthly indices and 30 days: %v, want refused (deleted since December 1)", err)
	}
	for _, want := range []string{"2026-11-30", "output.elasticsearch.ilm.retention_days = 30", "2026-12-01", "--allow-expiring"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Error("message spans lines")
	}
	if err := Check(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), now, p); err != nil {
		t.Errorf("December: %v", err)
	}
	if err := Check(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), now, nil); err != nil {
		t.Errorf("no policy: %v", err)
	}
}
