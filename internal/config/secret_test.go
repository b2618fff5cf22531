package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// The root Config has no credentials yet; these types stand in for the
// component configs (Event Hubs, Kafka, Elasticsearch) that will, to test
// the walk on secrets, nested sections and arrays of tables.

type testSASL struct {
	User     string        `toml:"user"`
	Password secret.String `toml:"password"`
}

type testKafka struct {
	Brokers []string `toml:"brokers"`
	SASL    testSASL `toml:"sasl"`
	Bulk    testBulk `toml:"bulk"`
}

// testBulk follows the component convention: relative key paths.
type testBulk struct {
	MaxDocs int `toml:"max_docs"`
}

func (b testBulk) Validate() []error {
	if b.MaxDocs < 1 {
		return []error{fmt.Errorf("max_docs: must be at least 1 (got %d)", b.MaxDocs)}
	}
	return nil
}

type testHeader struct {
	Name  string        `toml:"name"`
	Value secret.String `toml:"value"`
}

type testRoot struct {
	Kafka   testKafka       `toml:"kafka"`
	Headers []testHeader    `toml:"headers"`
	APIKeys []secret.String `toml:"api_keys"`
}

func loadTest(t *testing.T, tomlText string, environ []string) (testRoot, []string) {
	t.Helper()
	var r testRoot
	r.Kafka.Bulk.MaxDocs = 500
	l := newLoader(environ)
	l.load([]byte(tomlText), tomlText != "", reflect.ValueOf(&r).Elem())
	var msgs []string
	for _, p := range l.problems {
		msgs = append(msgs, p.Error())
	}
	for _, p := range validateTree(reflect.ValueOf(r), "") {
		msgs = append(msgs, p.Error())
	}
	return r, msgs
}

func writeSecretFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSecretSources(t *testing.T) {
	file := writeSecretFile(t, "from-file-pw\n")
	crlf := writeSecretFile(t, "crlf-pw\r\n")
	refInFile := writeSecretFile(t, "env:NOT_A_REF\n")
	tests := []struct {
		name    string
		toml    string
		environ []string
		want    string
	}{
		{"literal", "[kafka.sasl]\npassword = \"literal-pw\"\n", nil, "literal-pw"},
		{"env reference", "[kafka.sasl]\npassword = \"env:KAFKA_PW\"\n", []string{"KAFKA_PW=from-env-pw"}, "from-env-pw"},
		{"file reference", "[kafka.sasl]\npassword = \"file:" + file + "\"\n", nil, "from-file-pw"},
		{"file reference, CRLF", "[kafka.sasl]\npassword = \"file:" + crlf + "\"\n", nil, "crlf-pw"},
		{"override variable", "[kafka.sasl]\npassword = \"literal-pw\"\n", []string{"SSPR_KAFKA_SASL_PASSWORD=override-pw"}, "override-pw"},
		{"override variable with a reference", "", []string{"SSPR_KAFKA_SASL_PASSWORD=env:OTHER", "OTHER=other-pw"}, "other-pw"},
		{"_FILE variable", "[kafka.sasl]\npassword = \"literal-pw\"\n", []string{"SSPR_KAFKA_SASL_PASSWORD_FILE=" + file}, "from-file-pw"},
		{"_FILE content is not a reference", "", []string{"SSPR_KAFKA_SASL_PASSWORD_FILE=" + refInFile}, "env:NOT_A_REF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, msgs := loadTest(t, tt.toml, tt.environ)
			if len(msgs) > 0 {
				t.Fatal(msgs)
			}
			if got := r.Kafka.SASL.Password.Reveal(); got != tt.want {
				t.Errorf("password = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSecretsInArrays(t *testing.T) {
	const file = `
api_keys = ["env:K1", "literal-k2"]
[[headers]]
name = "Authorization"
value = "env:AUTH"
`
	extra := writeSecretFile(t, "extra\n")
	r, msgs := loadTest(t, file, []string{"K1=key-one", "AUTH=Bearer abc"})
	if len(msgs) > 0 {
		t.Fatal(msgs)
	}
	if r.APIKeys[0].Reveal() != "key-one" || r.APIKeys[1].Reveal() != "literal-k2" {
		t.Errorf("api_keys not resolved")
	}
	if len(r.Headers) != 1 || r.Headers[0].Value.Reveal() != "Bearer abc" {
		t.Errorf("headers = %d entries, not resolved as expected", len(r.Headers))
	}
	// The whole array from its variable, references resolved.
	r, msgs = loadTest(t, file, []string{"K1=key-one", "AUTH=Bearer abc",
		`SSPR_HEADERS=[{name = "Authorization", value = "env:AUTH"}, {name = "X-Extra", value = "file:` + extra + `"}]`})
	if len(msgs) > 0 {
		t.Fatal(msgs)
	}
	if len(r.Headers) != 2 || r.Headers[0].Value.Reveal() != "Bearer abc" || r.Headers[1].Name != "X-Extra" || r.Headers[1].Value.Reveal() != "extra" {
		t.Errorf("headers = %d entries, not resolved as expected", len(r.Headers))
	}
	// An element has no variables, a secret's _FILE one included.
	var root testRoot
	l := newLoader([]string{"SSPR_HEADERS_1_NAME=X-Extra", "SSPR_HEADERS_1_VALUE_FILE=" + extra})
	l.load([]byte(file), true, reflect.ValueOf(&root).Elem())
	if got := l.unknownEnv(); len(got) != 2 || len(root.Headers) != 1 {
		t.Errorf("element variables: unknown %v, %d headers", got, len(root.Headers))
	}
}

// secretValues are planted in every failing configuration below; none may
// appear in a problem or in the printed configuration.
var secretValues = []string{"hunter2", "tiger-lily", "s3cr3t-file", "pw-in-env", "42424242"}

func TestSecretsNeverPrinted(t *testing.T) {
	pwFile := writeSecretFile(t, "s3cr3t-file\n")
	tests := []struct {
		name    string
		toml    string
		environ []string
		want    []string // problem prefixes
	}{
		{"printing a loaded config", "[kafka.sasl]\npassword = \"hunter2\"\n", []string{"SSPR_HEADERS=[{name = \"a\", value = \"tiger-lily\"}]", "SSPR_API_KEYS=pw-in-env"}, nil},
		{"missing env reference", "[kafka.sasl]\npassword = \"env:NOPE\"\n", nil, []string{"kafka.sasl.password: secret reference env:NOPE: environment variable not set"}},
		{"missing file reference", "[kafka.sasl]\npassword = \"file:/nonexistent/pw\"\n", nil, []string{"kafka.sasl.password: secret reference file:/nonexistent/pw: open: no such file"}},
		{"both variables", "", []string{"SSPR_KAFKA_SASL_PASSWORD=pw-in-env", "SSPR_KAFKA_SASL_PASSWORD_FILE=" + pwFile},
			[]string{"kafka.sasl.password: set by both SSPR_KAFKA_SASL_PASSWORD and SSPR_KAFKA_SASL_PASSWORD_FILE"}},
		{"secret of the wrong type", "[kafka.sasl]\npassword = 42424242\n", nil, []string{"kafka.sasl.password: must be a string (got an integer)"}},
		{"unquoted secret", "[kafka.sasl]\npassword = hunter2\n", nil, []string{"kafka.sasl.password: toml syntax error at line 2: syntax error in a secret value (details hidden)"}},
		{"unquoted secret in an array of tables", "[[headers]]\nname = \"a\"\nvalue = tiger-lily\n", nil, []string{"headers.value: toml syntax error at line 3: syntax error in a secret value"}},
		{"bad TOML array with a secret", "", []string{"SSPR_HEADERS=[{name = \"a\", value = tiger-lily}]"}, []string{"headers: environment variable SSPR_HEADERS: not a TOML inline array"}},
		{"secret among other problems", "[kafka.sasl]\npassword = \"hunter2\"\nuser = 7\n[kafka.bulk]\nmax_docs = 0\n", nil,
			[]string{"kafka.sasl.user: must be a string", "kafka.bulk.max_docs: must be at least 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, msgs := loadTest(t, tt.toml, tt.environ)
			assertProblems(t, msgs, tt.want...)
			printed := strings.Join(msgs, "\n") + fmt.Sprintf("\n%+v\n%v\n%#v\n%s", r, r, r, r.Kafka.SASL.Password)
			for _, s := range secretValues {
				if strings.Contains(printed, s) {
					t.Errorf("secret %q printed:\n%s", s, printed)
				}
			}
			if tt.name == "printing a loaded config" {
				if r.Kafka.SASL.Password.Reveal() != "hunter2" || r.Headers[0].Value.Reveal() != "tiger-lily" || r.APIKeys[0].Reveal() != "pw-in-env" {
					t.Errorf("secrets not loaded, so the redaction check proves nothing")
				}
				if !strings.Contains(printed, secret.Redacted) {
					t.Errorf("no redacted marker in %s", printed)
				}
			}
		})
	}
}

func TestSecretsInLoadError(t *testing.T) {
	// Through the public Load: a root with problems, and a secret-like
	// value in an unrelated variable must not leak either.
	_, err := Load(writeTOML(t, "[log]\nlevel = \"hunter2\"\n"), []string{"SSPR_DECODE_MAX_BODY_BYTES=x"})
	if err == nil {
		t.Fatal("no error")
	}
	if !strings.Contains(err.Error(), "log.level") || !strings.Contains(err.Error(), "SSPR_DECODE_MAX_BODY_BYTES") {
		t.Errorf("error = %v", err)
	}
}

func TestKeysOfSecrets(t *testing.T) {
	r, msgs := loadTest(t, "[kafka.sasl]\npassword = \"hunter2\"\n", nil)
	if len(msgs) > 0 {
		t.Fatal(msgs)
	}
	keys := keysOf(reflect.ValueOf(r), "")
	byPath := map[string]keyInfo{}
	for _, k := range keys {
		byPath[k.Path] = k
	}
	pw := byPath["kafka.sasl.password"]
	if !pw.Secret || pw.Type != "secret" || pw.Env != "SSPR_KAFKA_SASL_PASSWORD" || pw.EnvFile != "SSPR_KAFKA_SASL_PASSWORD_FILE" || pw.Default != secret.Redacted {
		t.Errorf("password key = %+v", pw)
	}
	if h := byPath["headers[].value"]; !h.Secret || h.Env != "" || h.EnvFile != "" {
		t.Errorf("headers[].value key = %+v", h)
	}
	if k := byPath["kafka.bulk.max_docs"]; k.Default != "500" || k.Type != "int" {
		t.Errorf("max_docs key = %+v", k)
	}
}

// TestComponentValidation checks that a component's relative messages get
// their section's path, also inside arrays of tables.
func TestComponentValidation(t *testing.T) {
	type root struct {
		Out struct {
			Kafka testKafka `toml:"kafka"`
		} `toml:"output"`
		Many []testBulk `toml:"many"`
	}
	var r root
	r.Many = []testBulk{{MaxDocs: 1}, {MaxDocs: 0}}
	var msgs []string
	for _, err := range validateTree(reflect.ValueOf(r), "") {
		msgs = append(msgs, err.Error())
	}
	assertProblems(t, msgs, "output.kafka.bulk.max_docs: must be at least 1 (got 0)", "many[1].max_docs: must be at least 1")
	errs := validateTree(reflect.ValueOf(r), "")
	var ke *keyError
	if !errors.As(errs[0], &ke) || errors.Unwrap(errs[0]) == nil {
		t.Errorf("component error not wrapped: %#v", errs[0])
	}
}

// TestWrappedComponent covers the way a component config without an
// "enabled" key joins [output]: embedded in a struct that adds it, whose
// keys and variables are the component's.
func TestWrappedComponent(t *testing.T) {
	type wrapped struct {
		Enabled bool `toml:"enabled"`
		testKafka
	}
	type root struct {
		Output struct {
			Kafka wrapped `toml:"kafka"`
		} `toml:"output"`
	}
	var r root
	l := newLoader([]string{"SSPR_OUTPUT_KAFKA_BROKERS=b1:9092,b2:9092", "SSPR_OUTPUT_KAFKA_SASL_PASSWORD=hunter2"})
	l.load([]byte("[output.kafka]\nenabled = false\n[output.kafka.bulk]\nmax_docs = 0\n"), true, reflect.ValueOf(&r).Elem())
	if len(l.problems) > 0 {
		t.Fatal(l.problems)
	}
	if r.Output.Kafka.Brokers[1] != "b2:9092" || r.Output.Kafka.SASL.Password.Reveal() != "hunter2" {
		t.Errorf("embedded keys not set: %+v", r.Output.Kafka.testKafka.Brokers)
	}
	var paths []string
	for _, k := range keysOf(reflect.ValueOf(r), "") {
		paths = append(paths, k.Path)
	}
	want := []string{"output.kafka.enabled", "output.kafka.brokers", "output.kafka.sasl.user", "output.kafka.sasl.password", "output.kafka.bulk.max_docs"}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("keys = %v, want %v", paths, want)
	}
}

// TestDisabledOutputsNotValidated: an output switched off is not validated
// (its settings may well be incomplete: the Kafka defaults name no broker);
// one switched on is, with its section's path; and its keys come from the
// embedded component config, in the file and in the environment.
func TestDisabledOutputsNotValidated(t *testing.T) {
	path := writeTOML(t, "[output.kafka]\nenabled = false\n[output.kafka.batch]\nmax_messages = 0\n")
	env := []string{"SSPR_OUTPUT_KAFKA_BROKERS=b1:9092,b2:9092", "SSPR_OUTPUT_KAFKA_SASL_PASSWORD=hunter2"}
	cfg, err := Load(path, env)
	if err != nil {
		t.Fatalf("disabled section validated: %v", err)
	}
	if cfg.Output.Kafka.Brokers[1] != "b2:9092" || cfg.Output.Kafka.SASL.Password.Reveal() != "hunter2" {
		t.Errorf("embedded keys not set: %v", cfg.Output.Kafka.Brokers)
	}
	_, err = Load(path, append(env, "SSPR_OUTPUT_KAFKA_ENABLED=true"))
	var msgs []string
	for _, p := range problems(t, err) {
		if strings.HasPrefix(p, "output.kafka.batch.max_messages: ") {
			msgs = append(msgs, p)
		}
	}
	if len(msgs) != 1 {
		t.Errorf("enabled section: want its batch.max_messages problem, got %v", err)
	}
	// Each output's settings made incomplete: no server to write to.
	for out, broken := range map[string][]string{
		"elasticsearch": {"SSPR_OUTPUT_ELASTICSEARCH_ADDRESSES="},
		"opensearch":    {"SSPR_OUTPUT_OPENSEARCH_ADDRESSES="},
		"kafka":         {"SSPR_OUTPUT_KAFKA_BROKERS="},
	} {
		t.Run(out, func(t *testing.T) {
			if _, err := Load("", broken); err != nil {
				t.Fatalf("disabled output.%s validated: %v", out, err)
			}
			_, err := Load("", append(broken, "SSPR_OUTPUT_"+strings.ToUpper(out)+"_ENABLED=true"))
			ps := problems(t, err)
			if len(ps) == 0 {
				t.Fatalf("enabled output.%s without a server: no problem", out)
			}
			for _, p := range ps {
				if !strings.HasPrefix(p, "output."+out+".") {
					t.Errorf("problem %q not under output.%s", p, out)
				}
			}
		})
	}
}
