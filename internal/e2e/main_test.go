// Package e2e runs the built sspr-exporter binary as child processes against
// the project's test servers (Event Hubs emulator, Azurite, Elasticsearch
// double, Apache Kafka) and checks what comes out of its sinks. See
// docs/testing.md.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// exporterBin is the binary built once by TestMain.
var exporterBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sspr-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	exporterBin = filepath.Join(dir, "sspr-exporter")
	args := []string{"build", "-o", exporterBin}
	// A race-enabled exporter finds data races under faults but is several
	// times slower; it is opt-in so the default run fits its time budget.
	if os.Getenv("SSPR_E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/sspr-exporter")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build sspr-exporter:", err)
		return 1
	}
	return m.Run()
}

// moduleRoot is the directory holding go.mod above the working directory.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}
