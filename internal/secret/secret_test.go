package secret

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestFormsOfCredentials(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	cases := []struct {
		name string
		v    string
		want []string
	}{
		{"password", `pa"ss<w>&rd`, []string{
			`pa"ss<w>&rd`, `pa\"ss\u003cw\u003e\u0026rd`, `pa\"ss<w>&rd`, "pa%22ss%3Cw%3E%26rd",
			b64([]byte(`pa"ss<w>&rd`)), base64.RawURLEncoding.EncodeToString([]byte(`pa"ss<w>&rd`)),
		}},
		// An encoded API key: the decoded "id:key" and the key alone are
		// secrets too.
		{"api key", b64([]byte("VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw")), []string{
			b64([]byte("VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw")),
			"VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw", "ui2lp2axTNmsyakw9tvNnw",
			b64([]byte("ui2lp2axTNmsyakw9tvNnw")),
		}},
		{"basic credential", "sspr:s3cr3t", []string{"sspr:s3cr3t", b64([]byte("sspr:s3cr3t")), "sspr%3As3cr3t"}},
	}
	for _, c := range cases {
		r := NewRedactor(c.v)
		for _, w := range c.want {
			if got := r.Redact("<" + w + ">"); got != "<"+Redacted+">" {
				t.Errorf("%s: form %q not redacted: %q", c.name, w, got)
			}
		}
	}
	// A short decoded part is not taken: it would blank ordinary words.
	r := NewRedactor(b64([]byte("ab:cd")))
	if got := r.Redact("x cd y"); got != "x cd y" {
		t.Errorf("short decoded parts taken: %q", got)
	}
}

func TestRedactor(t *testing.T) {
	const pw = "s3cr3t-Pa55"
	r := NewRedactor(pw, "sspr:"+pw, "")
	basic := base64.StdEncoding.EncodeToString([]byte("sspr:" + pw))
	in := "Authorization: Basic " + basic + "\npassword=" + pw + " and " + base64.RawURLEncoding.EncodeToString([]byte(pw)) + " user sspr"
	got := r.Redact(in)
	for _, leak := range []string{pw, basic, base64.RawURLEncoding.EncodeToString([]byte(pw)), base64.StdEncoding.EncodeToString([]byte(pw))} {
		if strings.Contains(got, leak) {
			t.Errorf("%q left in %q", leak, got)
		}
	}
	if want := "Authorization: Basic " + Redacted + "\npassword=" + Redacted + " and " + Redacted + " user sspr"; got != want {
		t.Errorf("Redact = %q\nwant     %q", got, want)
	}
	var none *Redactor
	if none.Redact("x") != "x" || NewRedactor("").Redact("x") != "x" {
		t.Error("a redactor without secrets changed the text")
	}
}
