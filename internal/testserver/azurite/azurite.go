// Package azurite runs Azurite's blob service (npm azurite, installed by
// scripts/deps/node.sh) for tests, on a free loopback port with a temporary
// data directory, and can stop and restart it on the same port and data for
// outage tests.
package azurite

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/testserver/eventhubsemu"
)

// Account and Key are Azurite's well-known development account and key.
const (
	Account = "devstoreaccount1"
	Key     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Server is a running (or stopped) Azurite blob service.
type Server struct {
	Port int
	Dir  string

	bin string
	mu  sync.Mutex
	cmd *exec.Cmd
	out *bytes.Buffer
	// done closes when the current process has exited.
	done chan struct{}
}

// Start runs Azurite on a free port and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	dir, err := eventhubsemu.Dir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		eventhubsemu.Missing(t, "node is not installed")
	}
	bin := filepath.Join(dir, "node_modules", ".bin", "azurite-blob")
	if _, err := os.Stat(bin); err != nil {
		eventhubsemu.Missing(t, "the npm package azurite is not installed in "+dir)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("azurite: %v", err)
	}
	s := &Server{Port: port, Dir: t.TempDir(), bin: bin}
	t.Cleanup(func() { _ = s.Stop() })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// Start (re)starts the process on the same port and data directory and
// waits until it accepts connections.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("azurite: already running")
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := s.startOnce(deadline)
		if err == nil {
			return nil
		}
		// The port of a just-stopped process can take a moment to free up.
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *Server) startOnce(deadline time.Time) error {
	cmd := exec.Command(s.bin, "--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(s.Port),
		"--location", s.Dir, "--skipApiVersionCheck", "--disableTelemetry", "--silent")
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("azurite: start: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	for {
		select {
		case <-done:
			return fmt.Errorf("azurite exited before it was ready: %s", out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			s.cmd, s.out, s.done = cmd, out, done
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("azurite not ready on %s after 60s: %s", addr, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop ends the process by its PID, gracefully first because Azurite writes
// its metadata to the data directory only on shutdown; the data directory
// stays for a later Start.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
	return nil
}

// Kill ends the process with SIGKILL, as a crash would.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
	return nil
}

// BlobURL is the service URL of the development account.
func (s *Server) BlobURL() string {
	return "http://127.0.0.1:" + strconv.Itoa(s.Port) + "/" + Account
}

// ConnectionString is a storage connection string for the development account.
func (s *Server) ConnectionString() string {
	return "DefaultEndpointsProtocol=http;AccountName=" + Account + ";AccountKey=" + Key + ";BlobEndpoint=" + s.BlobURL() + ";"
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
