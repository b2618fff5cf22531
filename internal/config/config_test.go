package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sspr-exporter/sspr-exporter/internal/report/deliver"
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
	"github.com/sspr-exporter/sspr-exporter/internal/sink/file"
	filesource "github.com/sspr-exporter/sspr-exporter/internal/source/file"
)

func writeTOML(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// problems returns the problem messages of a Load error.
func problems(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *config.Error", err)
	}
	var out []string
	for _, p := range ce.Problems {
		out = append(out, p.Error())
	}
	return out
}

// assertProblems checks that msgs has exactly one message per prefix, in
// any order.
func assertProblems(t *testing.T, msgs []string, prefixes ...string) {
	t.Helper()
	if len(msgs) != len(prefixes) {
		t.Fatalf("got %d problems, want %d:\n%s", len(msgs), len(prefixes), strings.Join(msgs, "\n"))
	}
	left := slices.Clone(msgs)
	for _, p := range prefixes {
		i := slices.IndexFunc(left, func(m string) bool { return strings.HasPrefix(m, p) })
		if i < 0 {
			t.Errorf("no problem starting with %q in:\n%s", p, strings.Join(msgs, "\n"))
			continue
		}
		left = slices.Delete(left, i, i+1)
	}
}

func TestDefaultIsValid(t *testing.T) {
	if errs := Default().Validate(); len(errs) > 0 {
		t.Fatalf("Default().Validate() = %v", errs)
	}
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("Load with no file and no environment = %+v, want the defaults", cfg)
	}
}

const fullTOML = `
[input]
type = "file"
[input.file]
paths = ["testdata/sample/*.json", "-"]
follow = true
poll_interval = "250ms"

[decode]
max_body_bytes = 1048576
preserve_original = true
default_tenant_id = "72f988bf-86f1-41af-91ab-2d7cd011db47"

[classify]
[[classify.activities]]
name = "Reset password (custom)"
action = "password-reset-custom"
type = ["user", "change"]
[[classify.activities]]
name = "Unlock user account (custom)"
action = "account-unlock"
type = ["user"]

[output.file]
enabled = true
path = "/var/log/sspr/events.ndjson"
max_bytes = 104857600
max_age = "24h"
max_backups = 7

[dead_letter]
path = "/var/log/sspr/dead.ndjson"

[pipeline]
max_in_flight = 8
shutdown_grace = "1m"

[log]
level = "debug"
format = "json"
`

func TestLoadFile(t *testing.T) {
	cfg, err := Load(writeTOML(t, fullTOML), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Sections the file leaves out keep their defaults.
	def := Default()
	want := Config{
		Input: Input{Type: "file", File: filesource.Config{
			Paths: []string{"testdata/sample/*.json", "-"}, Follow: true, PollInterval: 250 * time.Millisecond,
		}, EventHubs: def.Input.EventHubs, Kafka: def.Input.Kafka},
		Decode: Decode{MaxBodyBytes: 1 << 20, PreserveOriginal: true, DefaultTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		Classify: Classify{Activities: []Activity{
			{Name: "Reset password (custom)", Action: "password-reset-custom", Type: []string{"user", "change"}},
			{Name: "Unlock user account (custom)", Action: "account-unlock", Type: []string{"user"}},
		}},
		Output: Output{File: FileOutput{Enabled: true, Config: file.Config{
			Path: "/var/log/sspr/events.ndjson", MaxBytes: 100 << 20, MaxAge: 24 * time.Hour, MaxBackups: 7,
		}}, Elasticsearch: def.Output.Elasticsearch, OpenSearch: def.Output.OpenSearch, Kafka: def.Output.Kafka},
		DeadLetter: DeadLetter{Type: "file", Path: "/var/log/sspr/dead.ndjson", Kafka: def.DeadLetter.Kafka},
		Pipeline:   Pipeline{MaxInFlight: 8, ShutdownGrace: time.Minute},
		Log:        Log{Level: "debug", Format: "json"},
		Telemetry:  def.Telemetry,
		Enrich:     def.Enrich,
		Backfill:   def.Backfill,
		Detect:     def.Detect,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestPartialFileKeepsDefaults(t *testing.T) {
	cfg, err := Load(writeTOML(t, "[output.file]\nmax_backups = 3\npath = \"out.ndjson\"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Output.File.MaxBackups = 3
	want.Output.File.Path = "out.ndjson"
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestLoadFileProblems(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string // problem prefixes
	}{
		{"unknown section", "[inputs]\ntype = \"file\"\n", []string{"inputs: unknown key"}},
		{"unknown nested key", "[output.file]\nmax_size = 10\n", []string{"output.file.max_size: unknown key"}},
		{"unknown key in array of tables", "[[classify.activities]]\nname = \"X\"\naction = \"x\"\ntype = [\"user\"]\nnmae = \"y\"\n",
			[]string{"classify.activities[0].nmae: unknown key"}},
		{"several type errors", `
[input.file]
paths = "x.json"
follow = "yes"
poll_interval = 5
[output.file]
max_bytes = "big"
max_backups = 1.5
[pipeline]
shutdown_grace = "soon"
`, []string{
			"input.file.paths: must be an array",
			"input.file.follow: must be true or false",
			"input.file.poll_interval: must be a duration string",
			"output.file.max_bytes: must be an integer",
			"output.file.max_backups: must be an integer",
			"pipeline.shutdown_grace: invalid duration",
		}},
		{"section given a value", "log = \"debug\"\n", []string{"log: must be a table"}},
		{"wrong element type", "[input.file]\npaths = [\"a\", 2]\n", []string{"input.file.paths[1]: must be a string"}},
		{"decode and validation problems together", "[log]\nlevel = \"loud\"\nformat = 3\ncolour = true\n",
			[]string{"log.level: must be one of", "log.format: must be a string", "log.colour: unknown key"}},
		{"syntax error", "[log\nlevel = \"x\"\n", []string{"toml syntax error at line 2: expected"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeTOML(t, tt.toml), nil)
			assertProblems(t, problems(t, err), tt.want...)
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"), nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load = %v, want a not-exist error", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mut  func(*Config)
		want []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"input type", func(c *Config) { c.Input.Type = "eventhub" }, []string{"input.type: must be one of file"}},
		{"input paths", func(c *Config) {
			c.Input.File.Paths = []string{"a.json", "", "a.json", "[x"}
			c.Input.File.PollInterval = 0
		}, []string{"input.file.paths[1]: must not be empty", "input.file.paths[2]: duplicate of paths[0]",
			"input.file.paths[3]: invalid glob", "input.file.poll_interval: must be positive"}},
		{"no input paths", func(c *Config) { c.Input.File.Paths = nil }, []string{"input.file.paths: must list"}},
		{"decode", func(c *Config) {
			c.Decode.MaxBodyBytes = 0
			c.Decode.DefaultTenantID = "contoso"
		}, []string{"decode.max_body_bytes: must be at least 1", "decode.default_tenant_id: must be a tenant GUID"}},
		{"activities", func(c *Config) {
			c.Classify.Activities = []Activity{
				{Name: "Reset password", Action: "Reset_Password", Type: []string{"user", "update"}},
				{Name: "reset PASSWORD", Action: "reset-", Type: nil},
				{Name: " ", Action: "ok-1", Type: []string{"user", "user"}},
			}
		}, []string{
			"classify.activities[0].action: must be lowercase",
			"classify.activities[0].type[1]: must be one of admin, change",
			"classify.activities[1].name: duplicate of activities[0].name",
			"classify.activities[1].action: must be lowercase",
			"classify.activities[1].type: must list at least one",
			"classify.activities[2].name: must not be empty",
			"classify.activities[2].type[1]: duplicate",
		}},
		{"output file", func(c *Config) {
			c.Output.File.MaxBytes = -1
			c.Output.File.Path = ""
		}, []string{"output.file.path: must not be empty", "output.file.max_bytes: must not be negative"}},
		{"no output", func(c *Config) { c.Output.File.Enabled = false }, []string{"output: at least one output must be enabled"}},
		{"same files", func(c *Config) {
			c.Output.File.Path = "out/events.ndjson"
			c.DeadLetter.Path = "./out/events.ndjson"
			c.Input.File.Paths = []string{"out/events.ndjson"}
		}, []string{"dead_letter.path: must not be the same file as output.file.path",
			"input.file.paths[0]: must not be the same file as output.file.path",
			"input.file.paths[0]: must not be the same file as dead_letter.path"}},
		{"dead letter", func(c *Config) { c.DeadLetter.Path = "" }, []string{"dead_letter.path: must not be empty"}},
		{"pipeline", func(c *Config) {
			c.Pipeline.MaxInFlight = 0
			c.Pipeline.ShutdownGrace = -time.Second
		}, []string{"pipeline.max_in_flight: must be at least 1", "pipeline.shutdown_grace: must not be negative"}},
		{"log", func(c *Config) {
			c.Log.Level = "INFO"
			c.Log.Format = "xml"
		}, []string{"log.level: must be one of debug, info, warn, error", "log.format: must be one of auto, json, text"}},
		{"everything at once", func(c *Config) {
			c.Input.Type = ""
			c.Decode.MaxBodyBytes = -5
			c.Output.File.Enabled = false
			c.Pipeline.MaxInFlight = -1
			c.Log.Level = ""
		}, []string{"input.type", "decode.max_body_bytes", "output:", "pipeline.max_in_flight", "log.level"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mut(&c)
			var msgs []string
			for _, err := range c.Validate() {
				msgs = append(msgs, err.Error())
			}
			assertProblems(t, msgs, tt.want...)
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		check   func(Config) bool
	}{
		{"string", []string{"SSPR_OUTPUT_FILE_PATH=/tmp/x.ndjson"}, func(c Config) bool { return c.Output.File.Path == "/tmp/x.ndjson" }},
		{"key with underscores", []string{"SSPR_DECODE_MAX_BODY_BYTES=1024"}, func(c Config) bool { return c.Decode.MaxBodyBytes == 1024 }},
		{"section with underscore", []string{"SSPR_DEAD_LETTER_PATH=dead.ndjson"}, func(c Config) bool { return c.DeadLetter.Path == "dead.ndjson" }},
		{"bool", []string{"SSPR_INPUT_FILE_FOLLOW=true"}, func(c Config) bool { return c.Input.File.Follow }},
		{"duration", []string{"SSPR_PIPELINE_SHUTDOWN_GRACE=90s"}, func(c Config) bool { return c.Pipeline.ShutdownGrace == 90*time.Second }},
		{"list", []string{"SSPR_INPUT_FILE_PATHS=a.json, b/*.json ,"}, func(c Config) bool {
			return slices.Equal(c.Input.File.Paths, []string{"a.json", "b/*.json"})
		}},
		{"list as TOML", []string{`SSPR_INPUT_FILE_PATHS=["a,b.json", "c.json"]`}, func(c Config) bool {
			return slices.Equal(c.Input.File.Paths, []string{"a,b.json", "c.json"})
		}},
		{"array of tables as TOML", []string{`SSPR_CLASSIFY_ACTIVITIES=[{name = "X", action = "x", type = ["user"]}]`}, func(c Config) bool {
			return reflect.DeepEqual(c.Classify.Activities, []Activity{{Name: "X", Action: "x", Type: []string{"user"}}})
		}},
		{"later duplicate wins", []string{"SSPR_LOG_LEVEL=warn", "SSPR_LOG_LEVEL=error"}, func(c Config) bool { return c.Log.Level == "error" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load("", tt.environ)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("override not applied: %+v", cfg)
			}
			if len(cfg.UnknownEnv) > 0 {
				t.Errorf("UnknownEnv = %v", cfg.UnknownEnv)
			}
		})
	}
}

func TestEnvOverridesFile(t *testing.T) {
	path := writeTOML(t, fullTOML)
	cfg, err := Load(path, []string{"SSPR_LOG_LEVEL=warn", "SSPR_CLASSIFY_ACTIVITIES_1_ACTION=unlock", "SSPR_OUTPUT_FILE_MAX_BACKUPS=0"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Level != "warn" || cfg.Log.Format != "json" {
		t.Errorf("log = %+v", cfg.Log)
	}
	// An element of an array has no variable: the file's entries stay.
	if len(cfg.Classify.Activities) != 2 || cfg.Classify.Activities[1].Action != "account-unlock" || cfg.Classify.Activities[1].Name != "Unlock user account (custom)" {
		t.Errorf("activities = %+v", cfg.Classify.Activities)
	}
	if !slices.Equal(cfg.UnknownEnv, []string{"SSPR_CLASSIFY_ACTIVITIES_1_ACTION"}) {
		t.Errorf("UnknownEnv = %v, want the element variable", cfg.UnknownEnv)
	}
	if cfg.Output.File.MaxBackups != 0 || cfg.Output.File.MaxBytes != 100<<20 {
		t.Errorf("output.file = %+v", cfg.Output.File)
	}
}

func TestEnvProblems(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    []string
	}{
		{"bad int", []string{"SSPR_DECODE_MAX_BODY_BYTES=16MB"}, []string{"decode.max_body_bytes: environment variable SSPR_DECODE_MAX_BODY_BYTES: must be an integer"}},
		{"int overflow", []string{"SSPR_PIPELINE_MAX_IN_FLIGHT=99999999999999999999"}, []string{"pipeline.max_in_flight: environment variable SSPR_PIPELINE_MAX_IN_FLIGHT"}},
		{"bad bool", []string{"SSPR_OUTPUT_FILE_ENABLED=yes please"}, []string{"output.file.enabled: environment variable SSPR_OUTPUT_FILE_ENABLED: must be true or false"}},
		{"bad duration", []string{"SSPR_INPUT_FILE_POLL_INTERVAL=5"}, []string{"input.file.poll_interval: environment variable SSPR_INPUT_FILE_POLL_INTERVAL: must be a duration"}},
		{"bad TOML array", []string{"SSPR_CLASSIFY_ACTIVITIES=[{name = }]"}, []string{"classify.activities: environment variable SSPR_CLASSIFY_ACTIVITIES: not a TOML inline array"}},
		{"unknown key in TOML array", []string{`SSPR_CLASSIFY_ACTIVITIES=[{name = "X", action = "x", type = ["user"], kind = 1}]`},
			[]string{"classify.activities[0].kind: unknown key (from environment variable SSPR_CLASSIFY_ACTIVITIES)"}},
		{"several", []string{"SSPR_LOG_LEVEL=loud", "SSPR_LOG_FORMAT=xml", "SSPR_PIPELINE_MAX_IN_FLIGHT=x"},
			[]string{"log.level: must be one of", "log.format: must be one of", "pipeline.max_in_flight: environment variable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("", tt.environ)
			assertProblems(t, problems(t, err), tt.want...)
		})
	}
}

func TestUnknownEnv(t *testing.T) {
	cfg, err := Load("", []string{
		"SSPR_LOG_LEVL=debug", "SSPR_OUTPUT_FILE=x", "SSPR_CLASSIFY_ACTIVITIES_0_NAEM=x",
		"SSPR_REQUIRE_SERVERS=1", "SSPR_TEST_CACHE=/tmp/c", "PATH=/usr/bin", "SSPRX=1",
	})
	if err != nil {
		t.Fatalf("unknown variables must only warn: %v", err)
	}
	want := []string{"SSPR_CLASSIFY_ACTIVITIES_0_NAEM", "SSPR_LOG_LEVL", "SSPR_OUTPUT_FILE"}
	if !slices.Equal(cfg.UnknownEnv, want) {
		t.Errorf("UnknownEnv = %v, want %v", cfg.UnknownEnv, want)
	}
	if len(cfg.Classify.Activities) != 0 {
		t.Errorf("an unmatched element variable added an element: %+v", cfg.Classify.Activities)
	}
}

// TestArrayElementVariablesMatchNoKey: an array of tables is set whole by
// its variable; variables naming one of its elements (as if by index) set
// nothing and are reported as matching no key, whether the element exists,
// would be appended, or would leave a gap.
func TestArrayElementVariablesMatchNoKey(t *testing.T) {
	env := []string{
		"SSPR_CLASSIFY_ACTIVITIES_0_NAME=Y", "SSPR_CLASSIFY_ACTIVITIES_0_ACTION=y", "SSPR_CLASSIFY_ACTIVITIES_0_TYPE=user,change",
		"SSPR_CLASSIFY_ACTIVITIES_1_NAME=Z", "SSPR_CLASSIFY_ACTIVITIES_1_ACTION=z", "SSPR_CLASSIFY_ACTIVITIES_1_TYPE=info",
		"SSPR_CLASSIFY_ACTIVITIES_2_NAME=X",
	}
	cfg, err := Load("", env)
	if err != nil {
		t.Fatalf("element variables must only warn: %v", err)
	}
	want := []string{
		"SSPR_CLASSIFY_ACTIVITIES_0_ACTION", "SSPR_CLASSIFY_ACTIVITIES_0_NAME", "SSPR_CLASSIFY_ACTIVITIES_0_TYPE",
		"SSPR_CLASSIFY_ACTIVITIES_1_ACTION", "SSPR_CLASSIFY_ACTIVITIES_1_NAME", "SSPR_CLASSIFY_ACTIVITIES_1_TYPE",
		"SSPR_CLASSIFY_ACTIVITIES_2_NAME",
	}
	if !slices.Equal(cfg.UnknownEnv, want) {
		t.Errorf("UnknownEnv = %v, want %v", cfg.UnknownEnv, want)
	}
	if len(cfg.Classify.Activities) != 0 {
		t.Errorf("element variables added elements: %+v", cfg.Classify.Activities)
	}
}

func TestEnvName(t *testing.T) {
	for path, want := range map[string]string{
		"output.file.path":       "SSPR_OUTPUT_FILE_PATH",
		"decode.max_body_bytes":  "SSPR_DECODE_MAX_BODY_BYTES",
		"dead_letter.path":       "SSPR_DEAD_LETTER_PATH",
		"classify.activities":    "SSPR_CLASSIFY_ACTIVITIES",
		"output.kafka.sasl-user": "SSPR_OUTPUT_KAFKA_SASL_USER",
	} {
		if got := envName(path); got != want {
			t.Errorf("envName(%q) = %q, want %q", path, got, want)
		}
	}
	// The keys of an element of an array of tables have no variable.
	for _, k := range allKeys(Default()) {
		if strings.Contains(k.Path, "[]") && (k.Env != "" || k.EnvFile != "") {
			t.Errorf("%s has the variables %q %q", k.Path, k.Env, k.EnvFile)
		}
	}
}

// TestEnvNamesUnique guards the schema against two keys that one variable
// would set, including secrets' _FILE variables, and against a variable
// that looks like one naming an element of an array.
func TestEnvNamesUnique(t *testing.T) {
	checkEnvNamesUnique(t, allKeys(Default()))
	checkEnvNamesUnique(t, keysOf(reflect.ValueOf(testRoot{}), ""))
}

func checkEnvNamesUnique(t *testing.T, keys []keyInfo) {
	t.Helper()
	owner := map[string]string{}
	var arrays []string
	for _, k := range keys {
		if !strings.Contains(k.Path, "[]") && k.Env != envName(k.Path) {
			t.Errorf("%s: Env = %s, envName = %s", k.Path, k.Env, envName(k.Path))
		}
		for _, name := range []string{k.Env, k.EnvFile} {
			if name == "" {
				continue
			}
			if prev, dup := owner[name]; dup {
				t.Errorf("%s and %s share the variable %s", prev, k.Path, name)
			}
			owner[name] = k.Path
		}
		if slices.Contains(notKeys, k.Env) {
			t.Errorf("%s: variable %s is reserved for another use", k.Path, k.Env)
		}
		if k.Type == "array of tables" {
			arrays = append(arrays, k.Env+"_")
		}
	}
	// A variable PREFIX_<digits>_... of an array must not also be a key.
	for name, path := range owner {
		for _, a := range arrays {
			rest, ok := strings.CutPrefix(name, a)
			if !ok {
				continue
			}
			digits, _, _ := strings.Cut(rest, "_")
			if _, err := strconv.Atoi(digits); err == nil {
				t.Errorf("%s (%s) looks like an element variable of %s", name, path, a)
			}
		}
	}
}

// sampleEnv returns a variable value for a key of the given type and the
// Go value it must produce.
func sampleEnv(t *testing.T, k keyInfo, def reflect.Value, i int) (string, any) {
	t.Helper()
	switch k.Type {
	case "string":
		s := fmt.Sprintf("env-value-%d", i)
		return s, s
	case "bool":
		return strconv.FormatBool(!def.Bool()), !def.Bool()
	case "int", "int32", "int64":
		n := def.Int() + 7
		return strconv.FormatInt(n, 10), reflect.ValueOf(n).Convert(def.Type()).Interface()
	case "duration":
		d := time.Duration(def.Int()) + 3*time.Second
		return d.String(), d
	case "[]string":
		return fmt.Sprintf("a-%d, b-%d", i, i), []string{fmt.Sprintf("a-%d", i), fmt.Sprintf("b-%d", i)}
	case "secret":
		s := fmt.Sprintf("s3cret-%d", i)
		return s, secret.New(s)
	case "float64":
		f := def.Float() + 0.5
		return strconv.FormatFloat(f, 'g', -1, 64), f
	case "map[string]string":
		return fmt.Sprintf(`{X-Key = "v-%d"}`, i), map[string]string{"X-Key": fmt.Sprintf("v-%d", i)}
	}
	t.Fatalf("%s: no sample for type %s; extend the test", k.Path, k.Type)
	return "", nil
}

// valueAt returns the field at a Keys path in v; "[]" takes element 0.
func valueAt(t *testing.T, v reflect.Value, path string) reflect.Value {
	t.Helper()
	for part := range strings.SplitSeq(path, ".") {
		name, elem := strings.CutSuffix(part, "[]")
		found := false
		for _, f := range fields(v.Type()) {
			if f.name == name {
				v, found = v.FieldByIndex(f.index), true
				break
			}
		}
		if !found {
			t.Fatalf("%s: no field %s", path, name)
		}
		if elem {
			if v.Len() == 0 {
				t.Fatalf("%s: %s is empty", path, name)
			}
			v = v.Index(0)
		}
	}
	return v
}

// arraySamples are a value for each array of tables' variable and what it
// must set.
var arraySamples = map[string]struct {
	env  string
	want any
}{
	"classify.activities": {`[{name = "A", action = "a", type = ["user"]}]`, []Activity{{Name: "A", Action: "a", Type: []string{"user"}}}},
	"reports": {`[{name = "a", report = "resets", email = {to = ["x@example.com"]}, azblob = {container = "c"}}]`,
		Reports{{Name: "a", Report: "resets", Email: deliver.EmailConfig{To: []string{"x@example.com"}}, Azblob: deliver.BlobConfig{Container: "c"}}}},
}

// TestEveryKeyReachableByEnv sets each key alone through its variable and
// checks that exactly that setting changed. The keys of an element of an
// array of tables are set through the array's variable; a variable named
// as if for one of them is consumed by nothing.
func TestEveryKeyReachableByEnv(t *testing.T) {
	keys := allKeys(Default())
	if len(keys) < 15 {
		t.Fatalf("only %d keys: the walk misses sections", len(keys))
	}
	for i, k := range keys {
		t.Run(k.Path, func(t *testing.T) {
			cfg := Default()
			var env []string
			var want any
			switch {
			case k.Type == "array of tables":
				sample, ok := arraySamples[k.Path]
				if !ok {
					t.Fatalf("%s: no sample array; add one to arraySamples", k.Path)
				}
				env, want = []string{k.Env + "=" + sample.env}, sample.want
			case strings.Contains(k.Path, "[]"):
				def := valueAt(t, reflect.ValueOf(Config{Classify: Classify{Activities: make([]Activity, 1)}, Reports: make(Reports, 1)}), k.Path)
				val, _ := sampleEnv(t, k, def, i)
				elemVar := envName(strings.Replace(k.Path, "[]", ".0", 1))
				l := newLoader([]string{elemVar + "=" + val})
				l.load(nil, false, reflect.ValueOf(&cfg).Elem())
				if len(l.problems) > 0 || !slices.Equal(l.unknownEnv(), []string{elemVar}) || !reflect.DeepEqual(cfg, Default()) {
					t.Errorf("%s: problems %v, unknown %v, config changed: %v", elemVar, l.problems, l.unknownEnv(), !reflect.DeepEqual(cfg, Default()))
				}
				return
			default:
				val, w := sampleEnv(t, k, valueAt(t, reflect.ValueOf(cfg), k.Path), i)
				env = []string{k.Env + "=" + val}
				want = w
			}
			l := newLoader(env)
			l.load(nil, false, reflect.ValueOf(&cfg).Elem())
			if len(l.problems) > 0 {
				t.Fatalf("%v: %v", env, l.problems)
			}
			if u := l.unknownEnv(); len(u) > 0 {
				t.Fatalf("%v not consumed", u)
			}
			if got := valueAt(t, reflect.ValueOf(cfg), k.Path).Interface(); !reflect.DeepEqual(got, want) {
				t.Errorf("%v: %s = %#v, want %#v", env, k.Path, got, want)
			}
		})
	}
}

// exampleKeys returns the key paths a TOML example mentions, counting
// commented-out lines ("# key = value") as mentions, since an example file
// documents optional keys that way.
func exampleKeys(t *testing.T, text string) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	table := ""
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		line = strings.TrimSpace(strings.TrimLeft(line, "#"))
		switch {
		case strings.HasPrefix(line, "[[") && strings.Contains(line, "]]"):
			table = strings.TrimSpace(line[2:strings.Index(line, "]]")])
			keys[table] = true
		case strings.HasPrefix(line, "[") && strings.Contains(line, "]"):
			table = strings.TrimSpace(line[1:strings.Index(line, "]")])
			keys[table] = true
		default:
			k, _, ok := strings.Cut(line, "=")
			k = strings.TrimSpace(k)
			if ok && k != "" && !strings.ContainsAny(k, " \t\"'") {
				keys[join(table, k)] = true
			}
		}
	}
	return keys
}

func TestExampleFileHasEveryKey(t *testing.T) {
	const path = "../../config.example.toml"
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s does not exist yet; this test checks it lists every key once it does", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	mentioned := exampleKeys(t, string(data))
	for _, k := range allKeys(Default()) {
		p := strings.ReplaceAll(k.Path, "[]", "")
		if !mentioned[p] {
			t.Errorf("%s does not mention %s (variable %s)", path, k.Path, k.Env)
		}
	}
	// Whatever the example sets for real must also load.
	if _, err := Load(path, nil); err != nil {
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatal(err)
		}
		for _, p := range ce.Problems {
			if strings.Contains(p.Error(), "unknown key") || strings.Contains(p.Error(), "must be a") {
				t.Errorf("%s: %v", path, p)
			}
		}
	}
}

func TestExampleKeysParser(t *testing.T) {
	got := exampleKeys(t, `
# [input]
[input.file]
paths = ["-"]   # comment
# follow = false
[[classify.activities]]
name = "x"
# this sentence = not a key
`)
	for _, k := range []string{"input", "input.file", "input.file.paths", "input.file.follow", "classify.activities", "classify.activities.name"} {
		if !got[k] {
			t.Errorf("%s not found in %v", k, got)
		}
	}
	if got["classify.activities.this sentence"] {
		t.Error("prose counted as a key")
	}
}

// TestExampleKeysFindsEveryKey runs the example check on a file laid out
// like the documented one, with optional entries commented out, so the
// check itself is known to work before the real example exists.
func TestExampleKeysFindsEveryKey(t *testing.T) {
	var example strings.Builder
	section := ""
	for _, k := range allKeys(Default()) {
		path := strings.ReplaceAll(k.Path, "[]", "")
		i := strings.LastIndexByte(path, '.')
		if sec := path[:max(i, 0)]; sec != section {
			section = sec
			fmt.Fprintf(&example, "[%s]\n", sec)
		}
		// Optional entries may be commented out.
		fmt.Fprintf(&example, "# %s = 1\n", path[i+1:])
	}
	mentioned := exampleKeys(t, example.String())
	for _, k := range allKeys(Default()) {
		if p := strings.ReplaceAll(k.Path, "[]", ""); !mentioned[p] {
			t.Errorf("%s not found", k.Path)
		}
	}
	delete(mentioned, "log.format")
	missing := 0
	for _, k := range allKeys(Default()) {
		if !mentioned[strings.ReplaceAll(k.Path, "[]", "")] {
			missing++
		}
	}
	if missing != 1 {
		t.Errorf("a removed key was not noticed")
	}
}

func TestErrorMessage(t *testing.T) {
	_, err := Load(writeTOML(t, "[log]\nlevel = \"loud\"\nformat = \"xml\"\n"), nil)
	msg := err.Error()
	if !strings.Contains(msg, "2 problems") || !strings.Contains(msg, "\n  log.level: ") || !strings.Contains(msg, "\n  log.format: ") {
		t.Errorf("message = %q", msg)
	}
	_, err = Load(writeTOML(t, "[log]\nlevel = \"loud\"\n"), nil)
	if msg := err.Error(); !strings.HasSuffix(msg, `: log.level: must be one of debug, info, warn, error (got "loud")`) {
		t.Errorf("message = %q", msg)
	}
}
