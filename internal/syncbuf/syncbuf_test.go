package syncbuf

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestConcurrentWritesAndTake(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(&b, "%d-%d\n", w, i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	got := b.Take()
	if n := strings.Count(got, "\n"); n != 400 {
		t.Fatalf("%d lines, want 400", n)
	}
	if b.String() != "" {
		t.Fatalf("not empty after Take: %q", b.String())
	}
}
