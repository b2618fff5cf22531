package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplayMaxBodyBytesZeroIsDefault(t *testing.T) {
	good := write(t, "good.json", rec("1"))
	if r := exec(t, "", "replay", "--max-body-bytes", "0", good); r.code != 0 || strings.Join(ids(t, r.stdout), ",") != "1" {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestReplayFlagsAfterFiles(t *testing.T) {
	a := write(t, "a.json", rec("1")+"\nnot json\n")
	b := write(t, "b.json", rec("2")+"\n")
	dl := filepath.Join(t.TempDir(), "dl.ndjson")
	r := exec(t, "", "replay", a, "--dead-letter", dl, b, "--log-level=error")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := strings.Join(ids(t, r.stdout), ","); got != "1,2" {
		t.Errorf("ids %q", got)
	}
	if got := readDL(t, dl); len(got) != 1 || got[0].rec.Source.File != a {
		t.Errorf("dead letters %+v, want the bad line of a.json in %s", got, dl)
	}
	// After "--" everything is a file name, even one that looks like a flag.
	dash := filepath.Join(t.TempDir(), "--dead-letter")
	if err := os.WriteFile(dash, []byte(rec("3")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = exec(t, "", "replay", "--log-level", "error", "--", dash)
	if r.code != 0 || strings.Join(ids(t, r.stdout), ",") != "3" {
		t.Errorf("after --: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	in := write(t, "in.json", rec("1")+"\n")
	out := filepath.Join(t.TempDir(), "out.ndjson")
	cfg := write(t, "c.toml", `
[input.file]
paths = ["`+in+`"]
[output.file]
path = "`+out+`"
[log]
level = "error"
[telemetry]
address = ""
`)
	bad := write(t, "bad.toml", "[input]\ntype = \"carrier-pigeon\"\n")
	t.Setenv("SSPR_CONFIG", cfg)
	if r := exec(t, "", "validate"); r.code != 0 || !strings.Contains(r.stdout, cfg+": OK") {
		t.Errorf("validate with SSPR_CONFIG: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := exec(t, "", "run"); r.code != 0 {
		t.Errorf("run with SSPR_CONFIG: exit %d %q", r.code, r.stderr)
	}
	if data, _ := os.ReadFile(out); strings.Join(ids(t, string(data)), ",") != "1" {
		t.Errorf("run with SSPR_CONFIG wrote %q", data)
	}
	if r := exec(t, "", "check"); r.code != 0 {
		t.Errorf("check with SSPR_CONFIG: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := exec(t, "", "setup"); r.code != 0 || !strings.Contains(r.stdout, "nothing to set up") {
		t.Errorf("setup with SSPR_CONFIG: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	// replay takes outputs from it: the document goes to out, not stdout.
	other := write(t, "other.json", rec("2")+"\n")
	if r := exec(t, "", "replay", other); r.code != 0 || r.stdout != "" {
		t.Errorf("replay with SSPR_CONFIG: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if data, _ := os.ReadFile(out); strings.Join(ids(t, string(data)), ",") != "1,2" {
		t.Errorf("replay with SSPR_CONFIG wrote %q", data)
	}
	// --config wins over the environment.
	if r := exec(t, "", "validate", "--config", bad); r.code != 1 || !strings.Contains(r.stdout, "input.type") {
		t.Errorf("validate --config over SSPR_CONFIG: exit %d %q", r.code, r.stdout)
	}
	t.Setenv("SSPR_CONFIG", bad)
	if r := exec(t, "", "validate", "--config", cfg); r.code != 0 {
		t.Errorf("--config did not win over SSPR_CONFIG: exit %d %q", r.code, r.stdout)
	}
	if r := exec(t, "", "validate"); r.code != 1 || !strings.Contains(r.stdout, "input.type") {
		t.Errorf("validate of a bad SSPR_CONFIG: exit %d %q", r.code, r.stdout)
	}
}
