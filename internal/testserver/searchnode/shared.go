package searchnode

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// pool holds the test binary's shared nodes, one per engine, of which one
// runs at a time: a node plus the tests must fit in CI's memory.
var pool sharedPool

type sharedPool struct {
	mu    sync.Mutex
	dir   string // set while Main runs
	nodes map[Engine]*sharedNode
}

type sharedNode struct {
	node  *Node
	users int   // tests that hold the node now
	err   error // why it could not start, so that later tests do not retry
}

// Main runs a test binary's tests, then stops the nodes that Shared started
// and removes their data. Call it from TestMain: os.Exit(searchnode.Main(m)).
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "searchnode-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "searchnode: shared nodes' directory:", err)
		return 1
	}
	pool.mu.Lock()
	pool.dir, pool.nodes = dir, map[Engine]*sharedNode{}
	pool.mu.Unlock()

	code := m.Run()

	pool.mu.Lock()
	defer pool.mu.Unlock()
	for e, sn := range pool.nodes {
		if err := sn.node.stop(syscall.SIGTERM); err != nil {
			fmt.Fprintf(os.Stderr, "searchnode: stop shared %s: %v\n", e, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "searchnode: remove shared nodes' directory:", err)
	}
	pool.dir, pool.nodes = "", nil
	return code
}

// Shared returns the test binary's node of engine e, with default settings,
// started on first use and kept (with its data: use index names of your
// own) until Main returns. A shared node of another engine that no running
// test holds is stopped first, and started again when asked for, on the same
// port and data; so that each engine starts once per binary, group a
// package's tests by engine. Skips or fails t like Start; tests that need
// other settings, Kill or Restart start their own node with Start.
func Shared(t testing.TB, e Engine) *Node {
	t.Helper()
	inst, err := e.installation()
	if err != nil {
		unavailable(t, "search node unavailable: %v", err)
	}
	pool.mu.Lock()
	defer pool.mu.Unlock()
	if pool.dir == "" {
		t.Fatal("searchnode.Shared needs the package's TestMain to run its tests with searchnode.Main")
	}
	sn := pool.nodes[e]
	if sn == nil {
		dir := filepath.Join(pool.dir, e.spec().module)
		n := newNode(e, inst, filepath.Join(dir, "home"), filepath.Join(dir, "node.log"), nil)
		n.shared = true
		sn = &sharedNode{node: n}
		pool.nodes[e] = sn
	}
	if sn.err == nil && !sn.node.running() {
		pool.parkIdleLocked(t, e)
		// A stopped or crashed node restarts on its port and data.
		if err := sn.node.stop(syscall.SIGKILL); err != nil {
			sn.err = err
		} else {
			sn.err = sn.node.start()
		}
	}
	if sn.err != nil {
		unavailable(t, "shared search node unavailable: %v\n%s", sn.err, sn.node.LogTail(16000))
	}
	sn.users++
	t.Cleanup(func() {
		pool.mu.Lock()
		sn.users--
		pool.mu.Unlock()
		if t.Failed() {
			t.Logf("shared %s log %s, last lines:\n%s", e, sn.node.logPath, sn.node.LogTail(16000))
		}
	})
	return sn.node
}

// parkIdle stops the shared nodes no test holds, other than keep's.
func (p *sharedPool) parkIdle(t testing.TB, keep Engine) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.parkIdleLocked(t, keep)
}

func (p *sharedPool) parkIdleLocked(t testing.TB, keep Engine) {
	for e, sn := range p.nodes {
		if e == keep || !sn.node.running() {
			continue
		}
		if sn.users > 0 {
			t.Logf("searchnode: shared %s stays up beside the new node: %d running test(s) hold it", e, sn.users)
			continue
		}
		if err := sn.node.stop(syscall.SIGTERM); err != nil {
			t.Logf("searchnode: stop idle shared %s: %v", e, err)
		}
	}
}
