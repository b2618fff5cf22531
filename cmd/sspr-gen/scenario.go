package main

import (
	"fmt"
	"io"
	"os"

	"github.com/sspr-exporter/sspr-exporter/internal/gen/scenario"
)

// writeScenario generates a scenario and writes its stream to out ("-" =
// stdout) and its labels to labels (none when empty).
func writeScenario(out, labels, format string, o scenario.Options) error {
	if format != "ecs" && format != "entra" {
		return fmt.Errorf("-format %q: want ecs or entra", format)
	}
	s, err := scenario.Generate(o)
	if err != nil {
		return err
	}
	write := s.WriteECS
	if format == "entra" {
		write = s.WriteEntra
	}
	if err := toFile(out, write); err != nil {
		return err
	}
	if labels != "" {
		if err := toFile(labels, s.WriteLabels); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, `{"scenario":%q,"documents":%d,"labels":%d,"from":%q,"to":%q}`+"\n", o.Scenario, len(s.Docs), len(s.Labels), s.From.Format("2006-01-02T15:04:05Z"), s.To.Format("2006-01-02T15:04:05Z"))
	return nil
}

func toFile(path string, write func(io.Writer) error) error {
	if path == "-" {
		return write(os.Stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
