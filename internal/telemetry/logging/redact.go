package logging

import (
	"github.com/sspr-exporter/sspr-exporter/internal/secret"
)

// Mask replaces every secret that redaction finds.
const Mask = secret.Redacted

// Redactor is the secret.Redactor of a Handler. AddSecrets and
// AddSecretStrings are its Add and AddStrings under the names the
// exporter's wiring uses.
type Redactor struct{ secret.Redactor }

// NewRedactor returns a redactor knowing the given secret values.
func NewRedactor(values ...string) *Redactor {
	r := &Redactor{}
	r.Add(values...)
	return r
}

// AddSecrets registers secret values, as secret.Redactor.Add.
func (r *Redactor) AddSecrets(values ...string) { r.Add(values...) }

// AddSecretStrings registers configuration secrets, as
// secret.Redactor.AddStrings.
func (r *Redactor) AddSecretStrings(values ...secret.String) { r.AddStrings(values...) }

// Redact removes registered values and the shapes secret.Redact knows; a
// nil Redactor removes only the shapes.
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return secret.Redact(s)
	}
	return r.Redactor.Redact(s)
}

// SecretsIn returns the secrets of a configuration, user:password pairs
// included, as secret.In does.
func SecretsIn(v any) []secret.String { return secret.In(v) }
