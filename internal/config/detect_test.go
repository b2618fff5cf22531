package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDetectSection(t *testing.T) {
	cases := []struct {
		name  string
		toml  string
		env   []string
		want  []string // substrings of the problems, each expected
		check func(t *testing.T, c Config)
	}{
		{name: "defaults load", toml: ``, check: func(t *testing.T, c Config) {
			if c.Detect.Rules.SprayIP.Threshold != 5 || c.Detect.Interval != 5*time.Minute || c.Detect.EffectiveLookback() != 24*time.Hour+10*time.Minute {
				t.Errorf("%+v, lookback %s", c.Detect, c.Detect.EffectiveLookback())
			}
		}},
		{name: "file sets a threshold", toml: "[detect.rules.sspr-spray-ip]\nthreshold = 9\n", check: func(t *testing.T, c Config) {
			if c.Detect.Rules.SprayIP.Threshold != 9 {
				t.Error(c.Detect.Rules.SprayIP)
			}
		}},
		{name: "environment sets a threshold and a ratio", env: []string{"SSPR_DETECT_RULES_SSPR_SPRAY_IP_THRESHOLD=11", "SSPR_DETECT_RULES_SSPR_SURGE_GROUP_RATIO=4.5"},
			check: func(t *testing.T, c Config) {
				if c.Detect.Rules.SprayIP.Threshold != 11 || c.Detect.Rules.SurgeGroup.Ratio != 4.5 {
					t.Error(c.Detect.Rules)
				}
			}},
		{name: "problems name their path", toml: "[detect.rules.sspr-spray-ip]\nthreshold = 0\n[detect.rules.sspr-surge-domain]\nbaseline = \"36h\"\n[detect.output.webhook]\nurl = \"ftp://x\"\n",
			want: []string{"detect.rules.sspr-spray-ip.threshold: ", "detect.rules.sspr-surge-domain.baseline: ", "detect.output.webhook.url: "}},
		{name: "index needs a search output", toml: "[detect.output]\nindex = true\n", want: []string{"detect.output.index: needs [output.elasticsearch]"}},
		{name: "kafka topic needs the kafka output", toml: "[detect.output]\nkafka_topic = \"alerts\"\n", want: []string{"detect.output.kafka_topic: needs [output.kafka]"}},
		{name: "enabled needs an output and a search output to read", toml: "[detect]\nenabled = true\n", want: []string{"detect.output: enabled detection needs an output", "detect.enabled: run reads"}},
		{name: "lookback shorter than the longest window", toml: "[detect]\nlookback = \"2h\"\n", want: []string{"detect.lookback: must cover"}},
		{name: "a bad index prefix", toml: "[output.elasticsearch]\nenabled = true\n[detect.output]\nindex = true\nindex_prefix = \"Bad Prefix\"\n", want: []string{"detect.output.index_prefix: "}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.toml")
			if err := os.WriteFile(p, []byte(c.toml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(p, c.env)
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("no problem %q in %q", w, msg)
				}
			}
			if len(c.want) == 0 && err != nil {
				t.Fatal(err)
			}
			if c.check != nil {
				c.check(t, cfg)
			}
		})
	}
}
