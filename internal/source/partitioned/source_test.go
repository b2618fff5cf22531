package partitioned

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/stream"
)

// fakeSession hands out what a test queues and records what it is asked.
type fakeSession struct {
	queue chan Messages[int]

	mu        sync.Mutex
	commits   []int
	rewinds   []int64
	commitErr error
}

func newFake() *fakeSession { return &fakeSession{queue: make(chan Messages[int], 16)} }

func (f *fakeSession) Receive(ctx context.Context) (Messages[int], error) {
	select {
	case m := <-f.queue:
		return m, nil
	case <-ctx.Done():
		return Messages[int]{}, ctx.Err()
	case <-time.After(5 * time.Millisecond):
		return Messages[int]{}, nil // nothing in time
	}
}

func (f *fakeSession) Rewind(from int64) error {
	f.mu.Lock()
	f.rewinds = append(f.rewinds, from)
	f.mu.Unlock()
	return nil
}

func (f *fakeSession) Commit(_ context.Context, last int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.commitErr != nil {
		return f.commitErr
	}
	f.commits = append(f.commits, last)
	return nil
}

func (f *fakeSession) recorded() (commits []int, rewinds []int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.commits...), append([]int64(nil), f.rewinds...)
}

// queue puts n messages of partition id, from position first, in f.
func (f *fakeSession) put(id string, first, n int) {
	m := Messages[int]{First: int64(first), Last: int64(first + n - 1), End: -1, Mark: first + n - 1}
	for i := range n {
		m.Bodies = append(m.Bodies, stream.Body{Data: fmt.Appendf(nil, "%s-%d", id, first+i), Pos: stream.Position{Partition: id}})
	}
	f.queue <- m
}

// serve starts src with one session per fake, keyed by partition id.
func serve(t *testing.T, src *Source[string, int], fakes map[string]*fakeSession) {
	t.Helper()
	var run []func(context.Context)
	for id, f := range fakes {
		run = append(run, func(ctx context.Context) {
			o := src.Own(src.Partition(id), f, -1)
			if err := o.Serve(ctx); err != nil {
				t.Errorf("partition %s: %v", id, err)
			}
			o.Release(ctx, 0)
		})
	}
	if err := src.Start(context.Background(), run...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = src.Close(ctx, nil)
	})
}

// serveOne starts a source with one partition, a.
func serveOne(t *testing.T, opts Options) (*Source[string, int], *fakeSession) {
	t.Helper()
	src, f := New[string, int](opts), newFake()
	serve(t, src, map[string]*fakeSession{"a": f})
	return src, f
}

func read(t *testing.T, src *Source[string, int]) stream.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := src.Read(ctx)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return b
}

// readNone checks that no batch is handed out for a moment.
func readNone(t *testing.T, src *Source[string, int], why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if b, err := src.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read = %v, %v; want nothing (%s)", bodies(b), err, why)
	}
}

func bodies(b stream.Batch) string {
	var out []string
	for _, body := range b.Bodies {
		out = append(out, string(body.Data))
	}
	return strings.Join(out, " ")
}

func ack(t *testing.T, b stream.Batch, err error) {
	t.Helper()
	if aerr := b.Ack(context.Background(), err); aerr != nil {
		t.Fatalf("Ack: %v", aerr)
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOneBatchOfAPartitionAtATime(t *testing.T) {
	src := New[string, int](Options{Name: "test"})
	a, b := newFake(), newFake()
	serve(t, src, map[string]*fakeSession{"a": a, "b": b})
	a.put("a", 0, 2)
	a.put("a", 2, 2)
	first := read(t, src)
	if got := bodies(first); got != "a-0 a-1" {
		t.Fatalf("first batch %q", got)
	}
	readNone(t, src, "partition a's batch is out")
	b.put("b", 0, 1)
	other := read(t, src)
	if got := bodies(other); got != "b-0" {
		t.Fatalf("another partition's batch = %q, want b-0", got)
	}
	ack(t, other, nil)
	ack(t, first, nil)
	next := read(t, src)
	if got := bodies(next); got != "a-2 a-3" {
		t.Fatalf("after the ack = %q, want a-2 a-3", got)
	}
	ack(t, next, nil)
}

func TestAckRunsOnceAndRecords(t *testing.T) {
	src, f := serveOne(t, Options{Name: "test"})
	f.put("a", 10, 3)
	b := read(t, src)
	ack(t, b, nil)
	if err := b.Ack(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "test: batch acknowledged twice") {
		t.Fatalf("second Ack = %v, want an error", err)
	}
	if err := b.Ack(context.Background(), errors.New("late failure")); err == nil {
		t.Fatal("third Ack (with an error) = nil")
	}
	commits, rewinds := f.recorded()
	if fmt.Sprint(commits) != "[12]" || len(rewinds) != 0 {
		t.Fatalf("commits %v, rewinds %v; want one commit at 12", commits, rewinds)
	}
	st := src.Partition("a").State(time.Now(), time.Minute, 0)
	if st.Received != 12 || st.Count != 3 || st.Processed != 12 || st.Next != 13 || st.Committed != 12 || st.CommittedAt.IsZero() {
		t.Fatalf("state %+v: want received, processed and committed 12, next 13, 3 messages", st)
	}
}

func TestAckWithErrorRewinds(t *testing.T) {
	src, f := serveOne(t, Options{Name: "test"})
	f.put("a", 5, 2)
	ack(t, read(t, src), errors.New("sink down"))
	f.put("a", 5, 2) // the fake reads again from where it is told
	again := read(t, src)
	if got := bodies(again); got != "a-5 a-6" {
		t.Fatalf("after the failed ack = %q", got)
	}
	commits, rewinds := f.recorded()
	if len(commits) != 0 || fmt.Sprint(rewinds) != "[5]" {
		t.Fatalf("commits %v, rewinds %v; want no commit and a rewind to 5", commits, rewinds)
	}
	if st := src.Partition("a").State(time.Now(), time.Minute, 0); st.Redelivered != 1 || st.Processed != -1 || st.Committed != -1 {
		t.Fatalf("state %+v: want 1 redelivery, nothing processed or committed", st)
	}
	ack(t, again, nil)
}

func TestCommitErrorIsCounted(t *testing.T) {
	f := newFake()
	f.commitErr = errors.New("coordinator moved")
	src := New[string, int](Options{Name: "test"})
	serve(t, src, map[string]*fakeSession{"a": f})
	f.put("a", 0, 1)
	ack(t, read(t, src), nil) // the documents are delivered: Ack has nothing to report
	st := src.Partition("a").State(time.Now(), time.Minute, 0)
	if st.CommitErrors != 1 || st.Committed != -1 || st.Processed != 0 {
		t.Fatalf("state %+v: want one commit error, processed 0, nothing committed", st)
	}
}

func TestAckAfterReleaseDoesNotCommit(t *testing.T) {
	src := New[string, int](Options{Name: "test"})
	f := newFake()
	p := src.Partition("a")
	released := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	if err := src.Start(context.Background(), func(context.Context) {
		o := src.Own(p, f, -1)
		_ = o.Serve(ctx)
		o.Release(ctx, 0)
		close(released)
	}); err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background(), nil)
	f.put("a", 0, 1)
	b := read(t, src)
	cancel() // the session ends: the partition moved
	<-released
	if p.Owned() {
		t.Fatal("partition still owned after Release")
	}
	ack(t, b, nil)
	if commits, _ := f.recorded(); len(commits) != 0 {
		t.Fatalf("commits %v after the session ended, want none", commits)
	}
	if st := p.State(time.Now(), time.Minute, 0); st.Processed != 0 {
		t.Fatalf("state %+v: want processed 0", st)
	}
}

func TestCloseWaitsForAcks(t *testing.T) {
	src, f := serveOne(t, Options{Name: "test"})
	f.put("a", 0, 1)
	b := read(t, src)
	closed := make(chan error, 1)
	go func() { closed <- src.Close(context.Background(), nil) }()
	waitFor(t, "Read to report the end", func() bool {
		_, err := src.Read(context.Background())
		return errors.Is(err, io.EOF)
	})
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with a batch out", err)
	case <-time.After(100 * time.Millisecond):
	}
	ack(t, b, nil)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if commits, _ := f.recorded(); fmt.Sprint(commits) != "[0]" {
		t.Fatalf("commits %v: the ack during Close must commit", commits)
	}
	if err := src.Ready(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Ready after Close = %v", err)
	}
}

func TestCloseGivesUpAtItsDeadline(t *testing.T) {
	src, f := serveOne(t, Options{Name: "test"})
	f.put("a", 0, 1)
	b := read(t, src)
	released := false
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := src.Close(ctx, func(context.Context) error { released = true; return nil })
	if err == nil || !strings.Contains(err.Error(), "test close: batches still unacknowledged") {
		t.Fatalf("Close = %v, want the unacknowledged error", err)
	}
	if !released {
		t.Fatal("Close did not release the clients")
	}
	if again := src.Close(context.Background(), nil); again == nil || again.Error() != err.Error() {
		t.Fatalf("second Close = %v, want the first one's %v", again, err)
	}
	_ = b.Ack(context.Background(), nil) // late: no panic, nothing to wait for
}

func TestStartOnceAndReadBeforeStart(t *testing.T) {
	src := New[string, int](Options{Name: "test"})
	if _, err := src.Read(context.Background()); err == nil || !strings.Contains(err.Error(), "read before start") {
		t.Fatalf("Read before Start = %v", err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err == nil {
		t.Fatal("second Start = nil")
	}
	if err := src.Close(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	unstarted := New[string, int](Options{Name: "test"})
	if err := unstarted.Close(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if err := unstarted.Start(context.Background()); err == nil {
		t.Fatal("Start after Close = nil")
	}
	if _, err := unstarted.Read(context.Background()); !errors.Is(err, io.EOF) {
		t.Fatalf("Read after Close = %v, want io.EOF", err)
	}
}

func TestStartContextEndsTheSource(t *testing.T) {
	src := New[string, int](Options{Name: "test"})
	f := newFake()
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan struct{})
	if err := src.Start(ctx, func(ctx context.Context) {
		defer close(returned)
		o := src.Own(src.Partition("a"), f, -1)
		_ = o.Serve(ctx)
		o.Release(ctx, 0)
	}); err != nil {
		t.Fatal(err)
	}
	f.put("a", 0, 1)
	ack(t, read(t, src), nil)
	cancel()
	<-returned
	if _, err := src.Read(context.Background()); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "test: stopped") {
		t.Fatalf("Read after the context ended = %v, want a stopped error", err)
	}
	if err := src.Close(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryBudgetSpansPartitions(t *testing.T) {
	src := New[string, int](Options{Name: "test", MaxBatchesInMemory: 1})
	a, b := newFake(), newFake()
	serve(t, src, map[string]*fakeSession{"a": a, "b": b})
	a.put("a", 0, 1)
	b.put("b", 0, 1)
	first := read(t, src)
	readNone(t, src, "the one batch of the budget is out")
	ack(t, first, nil)
	second := read(t, src)
	if bodies(first) == bodies(second) {
		t.Fatalf("the same batch twice: %q", bodies(first))
	}
	ack(t, second, nil)
}

func TestReleaseGivesTheBatchOutItsGrace(t *testing.T) {
	src := New[string, int](Options{Name: "test"})
	f := newFake()
	p := src.Partition("a")
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan bool, 1)
	if err := src.Start(context.Background(), func(context.Context) {
		o := src.Own(p, f, -1)
		_ = o.Serve(ctx)
		result <- o.Release(ctx, 50*time.Millisecond)
	}); err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background(), nil)
	f.put("a", 0, 1)
	b := read(t, src)
	cancel() // revoked with the batch out
	if acked := <-result; acked {
		t.Fatal("Release reported the batch acknowledged")
	}
	ack(t, b, nil)
	if commits, _ := f.recorded(); len(commits) != 0 {
		t.Fatalf("commits %v after the grace ran out, want none", commits)
	}
}

func TestFailureWarnsOncePerIntervalAndEnds(t *testing.T) {
	src := New[string, int](Options{Name: "test", WarnEvery: time.Minute})
	p := src.Partition("a")
	t0 := time.Unix(1000, 0)
	boom := errors.New("link refused")
	steps := []struct {
		at   time.Duration
		warn bool
		from time.Duration // when the failure began
	}{
		{0, true, 0},
		{30 * time.Second, false, 0},
		{61 * time.Second, true, 0},
		// Not reported for longer than quiet (2 min): a new failure.
		{5 * time.Minute, true, 5 * time.Minute},
	}
	for _, s := range steps {
		since, warn := p.Fail(boom, t0.Add(s.at), 2*time.Minute)
		if warn != s.warn || !since.Equal(t0.Add(s.from)) {
			t.Errorf("at %v: Fail = %v, %v; want since %v, warn %v", s.at, since, warn, t0.Add(s.from), s.warn)
		}
	}
	if since, err := p.Failure(t0.Add(6*time.Minute), 2*time.Minute); err != boom || !since.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("Failure within quiet = %v, %v", since, err)
	}
	if _, err := p.Failure(t0.Add(8*time.Minute), 2*time.Minute); err != nil {
		t.Errorf("Failure after quiet still reported: %v", err)
	}
	if _, err := p.Failure(t0.Add(time.Hour), 0); err == nil {
		t.Error("without quiet the failure ended by itself")
	}
	since, warned := p.Heal()
	if !since.Equal(t0.Add(5*time.Minute)) || !warned {
		t.Errorf("Heal = %v, %v", since, warned)
	}
	if since, _ := p.Heal(); !since.IsZero() {
		t.Errorf("second Heal = %v, want no failure", since)
	}
	if _, warn := p.Fail(boom, t0.Add(5*time.Minute+time.Second), 2*time.Minute); !warn {
		t.Error("the first report after Heal was not worth a warning")
	}
}

func TestStateEndAndStaleness(t *testing.T) {
	src := New[string, int](Options{Name: "test"})
	p := src.Partition("a")
	o := src.Own(p, newFake(), 7)
	now := time.Now()
	if st := p.State(now, time.Minute, 0); !st.Owned || st.End != -1 || st.Next != 7 || st.EndStale {
		t.Fatalf("fresh ownership: %+v", st)
	}
	if st := p.State(now.Add(2*time.Minute), time.Minute, 0); !st.EndStale {
		t.Fatalf("end never measured for 2 minutes: %+v, want stale", st)
	}
	written := now.Add(-time.Second)
	p.SetEnd(40, written, now.Add(2*time.Minute))
	p.SetEnd(30, time.Time{}, now.Add(2*time.Minute)) // an older answer
	st := p.State(now.Add(2*time.Minute), time.Minute, 0)
	if st.End != 40 || !st.EndWritten.Equal(written) || st.EndStale {
		t.Fatalf("after SetEnd: %+v, want end 40, fresh", st)
	}
	o.Release(context.Background(), 0)
	if st := p.State(now.Add(time.Hour), time.Minute, 0); st.Owned || st.EndStale {
		t.Fatalf("after Release: %+v, want neither owned nor stale", st)
	}
	if src.Lookup("b") != nil || src.Lookup("a") != p || src.Owned() != 0 {
		t.Fatal("Lookup or Owned disagree with the partitions used")
	}
}

func TestReadyClearsOnlyWhatMatches(t *testing.T) {
	src := New[string, int](Options{Name: "test"})
	type other struct{ error }
	src.SetReady(other{errors.New("group not joined")})
	src.ClearReady(func(err error) bool { return strings.Contains(err.Error(), "checkpoint") })
	if src.Ready() == nil {
		t.Fatal("a success cleared a reason it does not prove wrong")
	}
	src.SetReady(errors.New("checkpoint not written"))
	src.ClearReady(func(err error) bool { return strings.Contains(err.Error(), "checkpoint") })
	if err := src.Ready(); err != nil {
		t.Fatalf("Ready = %v, want cleared", err)
	}
}

func TestWatchRefreshesTheOwnedPartitions(t *testing.T) {
	src := New[string, int](Options{Name: "test"})
	owned, other := src.Partition("a"), src.Partition("b")
	src.Own(owned, newFake(), -1)
	owned.onReceived(50, 49, -1)
	other.onReceived(5, 4, -1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan []string, 1)
	go src.Watch(ctx, 10*time.Millisecond, func(_ context.Context, ps []*Partition[string]) {
		var keys []string
		for _, p := range ps {
			keys = append(keys, p.Key())
		}
		select {
		case got <- keys:
		default:
		}
		cancel()
	})
	if keys := <-got; fmt.Sprint(keys) != "[a]" {
		t.Fatalf("refresh got %v, want the owned partition a", keys)
	}
	for _, p := range []*Partition[string]{owned, other} {
		if st := p.State(time.Now(), time.Minute, 0); st.Rate <= 0 {
			t.Errorf("partition %s: rate %v after a watch round, want it measured", st.Key, st.Rate)
		}
	}
}
