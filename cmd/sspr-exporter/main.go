// Command sspr-exporter exports Microsoft Entra self-service password reset
// events as ECS documents. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/sspr-exporter/sspr-exporter/internal/app"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const usage = `sspr-exporter exports Microsoft Entra self-service password reset (SSPR)
events from audit logs as Elastic Common Schema documents.

Usage:
  sspr-exporter replay [flags] [FILE...]   decode files (or stdin) to ECS NDJSON on stdout
  sspr-exporter run --config FILE          run the exporter as configured
  sspr-exporter setup --config FILE        install index templates, ILM policy, Kafka topic
  sspr-exporter validate --config FILE     report every problem of a config file
  sspr-exporter check --config FILE        validate, then try every configured endpoint
  sspr-exporter backfill graph|blob --config FILE --from T
                                           read past audit logs (Graph, storage archive) into the outputs
  sspr-exporter report NAME [--config FILE | --input FILE...] [--since 30d] [--format F] [--output FILE]
                                           audit reports: resets, failed-resets, admin-resets, registrations, flows, summary
  sspr-exporter version                    print the version

Run 'sspr-exporter COMMAND --help' for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], app.Std{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
}

func run(args []string, std app.Std) int {
	if len(args) == 0 {
		fmt.Fprint(std.Err, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	ctx, stop := signalContext()
	defer stop()
	var err error
	switch cmd {
	case "replay":
		err = app.Replay(ctx, rest, std)
	case "run":
		err = app.Run(ctx, rest, std)
	case "validate":
		err = app.Validate(rest, std)
	case "setup":
		err = app.SetupCmd(ctx, rest, std)
	case "check":
		err = app.CheckCmd(ctx, rest, std)
	case "backfill":
		err = app.Backfill(ctx, rest, std)
	case "report":
		err = app.Report(ctx, rest, std)
	case "version", "--version":
		fmt.Fprintln(std.Out, "sspr-exporter", versionString())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(std.Out, usage)
		return 0
	default:
		err = &app.UsageError{Err: fmt.Errorf("unknown command %q", cmd)}
		cmd = ""
	}
	return exitCode(err, cmd, std.Err)
}

// signalContext is cancelled by SIGINT or SIGTERM with an *app.Interrupt
// naming the signal as its cause, so that a command can exit with the
// status that signal calls for.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case s := <-sigs:
			cancel(&app.Interrupt{Signal: s})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		cancel(nil)
		<-done
	}
}

// exitCode prints err in one line (with a hint for usage errors) and maps
// it to the process exit status: 2 usage, 1 failure, 0 success.
func exitCode(err error, cmd string, w io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var exit *app.ExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	fmt.Fprintf(w, "sspr-exporter: %v\n", err)
	var ue *app.UsageError
	if errors.As(err, &ue) {
		if cmd != "" {
			fmt.Fprintf(w, "Run 'sspr-exporter %s --help' for usage.\n", cmd)
		} else {
			fmt.Fprintln(w, "Run 'sspr-exporter --help' for usage.")
		}
		return 2
	}
	return 1
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
