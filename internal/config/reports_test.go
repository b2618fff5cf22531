package config

import (
	"strings"
	"testing"
	"time"
)

const validReports = `
[[reports]]
name = "weekly"
report = "failed-resets"
domain = ["contoso.com"]
period = "7d"
schedule = "0 6 * * 1"
dir = "/var/reports"

[[reports]]
name = "daily"
report = "summary"
period = "24h"
format = "html"
schedule = "@daily"
[reports.email]
host = "smtp.contoso.com"
username = "u@contoso.com"
password = "env:SMTP_PASSWORD"
from = "u@contoso.com"
to = ["secops@contoso.com"]

[[reports]]
name = "hourly"
report = "resets"
period = "90m"
schedule = "@every 1h"
[reports.azblob]
connection_string = "file:%s"
container = "sspr-reports"
`

// TestReportsLoad: entries load with their secret references resolved
// and their defaults applied where they are used.
func TestReportsLoad(t *testing.T) {
	csFile := writeSecretFile(t, "UseDevelopmentStorage=true\n")
	path := writeTOML(t, strings.Replace(validReports, "%s", csFile, 1))
	cfg, err := Load(path, []string{"SMTP_PASSWORD=pw-from-env"})
	if err != nil {
		t.Fatal(problems(t, err))
	}
	if len(cfg.Reports) != 3 {
		t.Fatalf("%d reports, want 3", len(cfg.Reports))
	}
	daily, ok := cfg.Reports.Find("daily")
	if !ok || daily.Email.Password.Reveal() != "pw-from-env" {
		t.Errorf("daily: found %v, password resolved %v", ok, daily.Email.Password.Reveal() == "pw-from-env")
	}
	if got := daily.WithDefaults().Email; got.Port != 587 || got.StartTLS != "required" {
		t.Errorf("email defaults: port %d starttls %q", got.Port, got.StartTLS)
	}
	hourly, _ := cfg.Reports.Find("hourly")
	if hourly.Azblob.ConnectionString.Reveal() != "UseDevelopmentStorage=true" {
		t.Error("azblob.connection_string file reference not resolved")
	}
	weekly, _ := cfg.Reports.Find("weekly")
	if weekly.WithDefaults().Format != "csv" || weekly.FileNameAt(time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)) != "weekly-2026-12-07.csv" {
		t.Errorf("weekly defaults: format %q file %q", weekly.WithDefaults().Format, weekly.FileNameAt(time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)))
	}
}

// TestReportsEnv: SSPR_REPORTS replaces the whole array, as for every
// array of tables, and secret references in it are resolved.
func TestReportsEnv(t *testing.T) {
	path := writeTOML(t, strings.Replace(validReports, "%s", writeSecretFile(t, "x"), 1))
	env := []string{
		"SMTP_PASSWORD=unused",
		`SSPR_REPORTS=[{name = "env-one", report = "flows", period = "2w", schedule = "@weekly", email = {host = "smtp.example.com", username = "u@example.com", password = "env:PW2", from = "u@example.com", to = ["a@example.com", "b@example.com"]}}]`,
		"PW2=second",
	}
	cfg, err := Load(path, env)
	if err != nil {
		t.Fatal(problems(t, err))
	}
	if len(cfg.Reports) != 1 || cfg.Reports[0].Name != "env-one" || len(cfg.Reports[0].Email.To) != 2 || cfg.Reports[0].Email.Password.Reveal() != "second" {
		t.Errorf("reports from the environment: %+v", cfg.Reports)
	}
}

func TestReportsValidate(t *testing.T) {
	base := `[[reports]]
name = "ok"
report = "resets"
period = "7d"
schedule = "@daily"
dir = "/r"
`
	tests := []struct {
		name  string
		extra string   // a second entry
		want  []string // substrings, each of some problem
	}{
		{"duplicate name", "[[reports]]\nname = \"ok\"\nreport = \"resets\"\nperiod = \"1d\"\nschedule = \"@daily\"\ndir = \"/r\"\n",
			[]string{"reports[1].name: duplicate of reports[0].name"}},
		{"bad name and report", "[[reports]]\nname = \"Bad_Name\"\nreport = \"nope\"\nperiod = \"1d\"\nschedule = \"@daily\"\ndir = \"/r\"\n",
			[]string{"reports[1].name: must be lowercase", "reports[1].report: must be one of resets, failed-resets"}},
		{"bad period, format, schedule", "[[reports]]\nname = \"b\"\nreport = \"flows\"\nperiod = \"7 days\"\nformat = \"pdf\"\nschedule = \"61 * * * *\"\ndir = \"/r\"\n",
			[]string{"reports[1].period:", "reports[1].format:", "reports[1].schedule:"}},
		{"time zone", "[[reports]]\nname = \"b\"\nreport = \"flows\"\nperiod = \"1d\"\nschedule = \"CRON_TZ=Europe/Paris 0 6 * * *\"\ndir = \"/r\"\n",
			[]string{"reports[1].schedule: \"CRON_TZ=Europe/Paris 0 6 * * *\": schedules run in UTC"}},
		{"missing period and schedule", "[[reports]]\nname = \"b\"\nreport = \"flows\"\ndir = \"/r\"\n",
			[]string{"reports[1].period: must be set", "reports[1].schedule: must be set"}},
		{"bad outcome", "[[reports]]\nname = \"b\"\nreport = \"flows\"\noutcome = [\"success\", \"maybe\"]\nperiod = \"1d\"\nschedule = \"@daily\"\ndir = \"/r\"\n",
			[]string{"reports[1].outcome[1]: must be one of"}},
		{"file name", "[[reports]]\nname = \"b\"\nreport = \"flows\"\nperiod = \"1d\"\nschedule = \"@daily\"\nfile_name = \"../{nme}.{ext}\"\ndir = \"/r\"\n",
			[]string{"reports[1].file_name: unknown placeholder {nme}", "reports[1].file_name: must be a file name"}},
		{"no destination", "[[reports]]\nname = \"b\"\nreport = \"flows\"\nperiod = \"1d\"\nschedule = \"@daily\"\n",
			[]string{"reports[1].dir: set the destination"}},
		{"two destinations", "[[reports]]\nname = \"b\"\nreport = \"flows\"\nperiod = \"1d\"\nschedule = \"@daily\"\ndir = \"/r\"\n[reports.azblob]\ncontainer = \"c-c\"\n",
			[]string{"reports[1].azblob: set exactly one destination"}},
		{"email problems", "[[reports]]\nname = \"b\"\nreport = \"flows\"\nperiod = \"1d\"\nschedule = \"@daily\"\n[reports.email]\nhost = \"smtp.example.com\"\nstarttls = \"off\"\nusername = \"u\"\npassword = \"p\"\nfrom = \"a@example.com\"\nto = [\"a@example.com\", \"not an address\"]\n",
			[]string{"reports[1].email.to[1]: not an e-mail address", "reports[1].email.username: AUTH is sent only over TLS"}},
		{"email empty to", "[[reports]]\nname = \"b\"\nreport = \"flows\"\nperiod = \"1d\"\nschedule = \"@daily\"\n[reports.email]\nhost = \"smtp.example.com\"\nfrom = \"a@example.com\"\n",
			[]string{"reports[1].email.to: must list at least one address"}},
		{"azblob problems", "[[reports]]\nname = \"b\"\nreport = \"flows\"\nperiod = \"1d\"\nschedule = \"@daily\"\n[reports.azblob]\ncontainer = \"C\"\n",
			[]string{"reports[1].azblob.account_url: set it or connection_string", "reports[1].azblob.container:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeTOML(t, base+tt.extra), nil)
			got := problems(t, err)
			for _, w := range tt.want {
				found := false
				for _, g := range got {
					found = found || strings.Contains(g, w)
				}
				if !found {
					t.Errorf("no problem contains %q; got %q", w, got)
				}
			}
			for _, g := range got {
				if !strings.HasPrefix(g, "reports[1].") {
					t.Errorf("problem %q is not about reports[1]", g)
				}
			}
		})
	}
}

// TestReportsValidateHidesPassword: a problem in an e-mail section never
// quotes the password.
func TestReportsValidateHidesPassword(t *testing.T) {
	text := "[[reports]]\nname = \"b\"\nreport = \"flows\"\nperiod = \"1d\"\nschedule = \"@daily\"\n[reports.email]\nhost = \"bad host\"\nusername = \"u\"\npassword = \"Sup3r-secret-pw\"\nfrom = \"x\"\nto = [\"y\"]\nauth = \"Sup3r\"\n"
	_, err := Load(writeTOML(t, text), nil)
	if err == nil {
		t.Fatal("invalid config loaded")
	}
	if strings.Contains(err.Error(), "Sup3r-secret-pw") || strings.Contains(strings.Join(problems(t, err), "\n"), "Sup3r-secret-pw") {
		t.Errorf("problems reveal the password: %v", problems(t, err))
	}
}

func TestParsePeriod(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"7d", 7 * 24 * time.Hour, false},
		{"24h", 24 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"2w", 14 * 24 * time.Hour, false},
		{"1h30m", 90 * time.Minute, false},
		{"30s", 0, true},
		{"0d", 0, true},
		{"-1d", 0, true},
		{"7 days", 0, true},
		{"10000d", 0, true},
	}
	for _, tt := range tests {
		got, err := ParsePeriod(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParsePeriod(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// TestReportWindow: the period ends at the run time truncated to the
// minute, in UTC, and the file name is expanded from its end.
func TestReportWindow(t *testing.T) {
	r := Report{Name: "weekly", Report: "resets", Period: "7d", Format: "table", FileName: "{report}-{name}-{date}T{time}.{ext}"}
	now := time.Date(2026, 12, 7, 7, 0, 59, 999, time.FixedZone("CET", 3600))
	from, to, err := r.Window(now)
	if err != nil {
		t.Fatal(err)
	}
	wantTo := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	if !to.Equal(wantTo) || to.Location() != time.UTC || !from.Equal(wantTo.AddDate(0, 0, -7)) {
		t.Errorf("window %v to %v, want %v to %v UTC", from, to, wantTo.AddDate(0, 0, -7), wantTo)
	}
	if got := r.FileNameAt(to); got != "resets-weekly-2026-12-07T0600.txt" {
		t.Errorf("file name %q", got)
	}
}
