package incidents

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/incident"
)

// Config is herald.yaml's incident section.
type Config struct {
	// DefaultRules includes the built-in rules (the runbook and seed cases).
	DefaultRules *bool `yaml:"defaultRules"`
	// RulesFile adds the rules of a rules file (`rules:` and a list); a
	// rule named like a default one replaces it.
	RulesFile string `yaml:"rulesFile" env:"HERALD_INCIDENT_RULES"`
	// Rules are inline rules, applied last.
	Rules []incident.Rule `yaml:"rules"`
	// CheckpointInterval is how often the projection's state is saved.
	CheckpointInterval config.Duration `yaml:"checkpointInterval"`
	// TickInterval is how often the wall clock is compared with the
	// projection's next deadline (a clock_tick is published when it passed).
	TickInterval config.Duration `yaml:"tickInterval"`
	// MaxClockSkew bounds how far ahead of its storage time an event's own
	// time may move the projection's clock.
	MaxClockSkew config.Duration `yaml:"maxClockSkew"`
	// KeepResolved is how many resolved incidents the API keeps.
	KeepResolved int `yaml:"keepResolved"`
}

// DefaultConfig uses the default rules.
func DefaultConfig() Config {
	return Config{
		CheckpointInterval: config.Duration(5 * time.Second),
		TickInterval:       config.Duration(100 * time.Millisecond),
		MaxClockSkew:       config.Duration(time.Minute),
		KeepResolved:       10000,
	}
}

// Validate checks the section (the rules are checked when compiled).
func (c *Config) Validate() error {
	switch {
	case c.CheckpointInterval < config.Duration(100*time.Millisecond):
		return errors.New("checkpointInterval: at least 100ms")
	case c.TickInterval < config.Duration(10*time.Millisecond) || c.TickInterval > config.Duration(time.Minute):
		return errors.New("tickInterval: between 10ms and 1m")
	case c.MaxClockSkew < 0:
		return errors.New("maxClockSkew: must not be negative")
	case c.KeepResolved < 1:
		return errors.New("keepResolved: at least 1")
	}
	return nil
}

// LoadConfig reads the incident section of a configuration file.
func LoadConfig(f *config.File) (Config, error) {
	c := DefaultConfig()
	if err := f.Section("incident", &c); err != nil {
		return c, err
	}
	return c, nil
}

// CompileRules builds the rule set the configuration asks for: the
// defaults, then the rules file, then the inline rules, merged by name
// (incident.Merge) before they are compiled, so a file may redefine any
// subset of the default rules.
func (c *Config) CompileRules(cat *event.Catalog) (*incident.Rules, error) {
	var layers []incident.Layer
	if c.DefaultRules == nil || *c.DefaultRules {
		d, err := incident.DefaultLayer()
		if err != nil {
			return nil, err
		}
		layers = append(layers, d)
	}
	if c.RulesFile != "" {
		b, err := os.ReadFile(c.RulesFile)
		if err != nil {
			return nil, fmt.Errorf("%w: incident.rulesFile: %w", config.ErrInvalid, err)
		}
		f, err := incident.DecodeRules(c.RulesFile, b)
		if err != nil {
			return nil, err
		}
		layers = append(layers, incident.Layer{Source: c.RulesFile, Rules: f.Rules})
	}
	if len(c.Rules) > 0 {
		layers = append(layers, incident.Layer{Source: "herald.yaml incident.rules", Rules: c.Rules})
	}
	set, source := incident.Merge(layers...)
	return incident.Compile(source, set, cat)
}
