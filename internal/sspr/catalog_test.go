package sspr

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"User started security info registration":            "user-started-security-info-registration",
		"  Reset password (self-service) ":                   "reset-password-self-service",
		"Self-service password reset flow activity progress": "self-service-password-reset-flow-activity-progress",
		"Réinitialiser — mot de passe!":                      "r-initialiser-mot-de-passe",
		"Reset p7y\u0671\ufffd}assword":                      "reset-p7y-assword",
		"\u212Aey step":                                      "key-step",
		"パスワード":                                              "",
		"---":                                                "",
	} {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLookup(t *testing.T) {
	cat, err := NewCatalog([]Activity{{Name: "Custom thing", Action: "custom-thing", Type: []string{"user", "info"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, service, action string
		ok                    bool
	}{
		{"RESET PASSWORD (SELF-SERVICE)", "", "password-reset", true},
		{" reset password (self-service) ", "Core Directory", "password-reset", true},
		{"custom THING", "", "custom-thing", true},
		{"Some new step", "self-service password management", "some-new-step", true},
		{"Update user", "Core Directory", "", false},
		{"Reset password  (self-service)", "Core Directory", "", false},
	} {
		a, ok := cat.Lookup(tc.name, tc.service)
		if ok != tc.ok || a.Action != tc.action {
			t.Errorf("Lookup(%q, %q) = %q %v, want %q %v", tc.name, tc.service, a.Action, ok, tc.action, tc.ok)
		}
	}
	if _, err := NewCatalog([]Activity{{Name: "x", Action: "Bad Action", Type: []string{"user"}}}); err == nil {
		t.Error("bad action accepted")
	}
	if _, err := NewCatalog([]Activity{{Name: "x", Action: "ok", Type: []string{"authentication"}}}); err == nil {
		t.Error("event type not allowed with category iam accepted")
	}
}

// TestMayMatchNeverRejectsAMatch checks the prefilter's promise: every
// name the classifier accepts, in any ASCII case and anywhere in a record,
// passes it; and a record with none of them is rejected.
func TestMayMatchNeverRejectsAMatch(t *testing.T) {
	extra := []Activity{{Name: "Zq", Action: "zq", Type: []string{"info"}}} // shorter than any anchor
	cat, err := NewCatalog(extra)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{ServiceName, extra[0].Name}
	for _, a := range Builtin {
		names = append(names, a.Name)
	}
	var scratch []byte
	for _, n := range names {
		for range 200 {
			b := []byte(n)
			for i := range b {
				if rng.IntN(2) == 0 {
					b[i] = strings.ToUpper(string(b[i]))[0]
				}
			}
			rec := `{"category":"AuditLogs","properties":{"x":"` + strings.Repeat("a", rng.IntN(40)) + `","activityDisplayName":"` + string(b) + `"}}`
			if !cat.MayMatch([]byte(rec), &scratch) {
				t.Fatalf("prefilter rejected %q", rec)
			}
			if a, ok := cat.Lookup(string(b), ""); n != ServiceName && (!ok || a.Action == "") {
				t.Fatalf("Lookup rejected %q", b)
			}
		}
	}
	for _, rec := range []string{
		`{"category":"AuditLogs","properties":{"activityDisplayName":"Update user","loggedByService":"Core Directory"}}`,
		`{"category":"SignInLogs","properties":{"appDisplayName":"Office 365"}}`,
	} {
		if cat.MayMatch([]byte(rec), &scratch) {
			t.Errorf("prefilter passed %q", rec)
		}
	}
	// A \u escape can spell any letter: such records are always parsed.
	if !cat.MayMatch([]byte(`{"activityDisplayName":"Reset pass\u0077ord (self-service)"}`), &scratch) {
		t.Error("escaped name rejected")
	}
}
