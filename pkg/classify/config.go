package classify

import (
	"fmt"

	"github.com/heraldhq/herald/pkg/config"
)

// Config is herald.yaml's integrations section: how Herald classifies
// producers' integration calls as they come in (over HTTP or a bridge).
type Config struct {
	// Classify are the classification rules, tried in order before
	// Herald's defaults (Defaults).
	Classify []Rule `yaml:"classify"`
	// DefaultClassify includes the defaults after Classify (default true).
	DefaultClassify *bool `yaml:"defaultClassify"`
}

// Load reads the integrations section and compiles its rules; an error
// names the key at fault.
func Load(f *config.File) (*Classifier, error) {
	var c Config
	if err := f.Section("integrations", &c); err != nil {
		return nil, err
	}
	rules := c.Classify
	if c.DefaultClassify == nil || *c.DefaultClassify {
		rules = append(rules, Defaults()...)
	}
	cl, err := New(rules)
	if err != nil {
		return nil, fmt.Errorf("%w: integrations.classify: %w", config.ErrInvalid, err)
	}
	return cl, nil
}
