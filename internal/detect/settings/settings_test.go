package settings

import (
	"testing"
	"time"
)

func TestLongest(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		want time.Duration
	}{
		{"defaults: the daily surge bucket", func(*Config) {}, Day},
		{"without surges: the longest window", func(c *Config) {
			c.Rules.SurgeDomain.Enabled, c.Rules.SurgeGroup.Enabled = false, false
			c.Rules.AdminMassReset.Window = 3 * time.Hour
		}, 3 * time.Hour},
		{"a disabled rule does not count", func(c *Config) {
			c.Rules.SurgeDomain.Enabled, c.Rules.SurgeGroup.Enabled = false, false
			c.Rules.AdminMassReset.Enabled = false
			c.Rules.AdminMassReset.Window = 3 * time.Hour
			c.Rules.ResetThenSecInfo.Within = 2 * time.Hour
		}, 2 * time.Hour},
	}
	for _, c := range cases {
		cfg := Default()
		c.edit(&cfg)
		if got := cfg.Longest(); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
