package ingest

import (
	"fmt"

	"github.com/heraldhq/herald/pkg/classify"
	"github.com/heraldhq/herald/pkg/config"
)

// Config is herald.yaml's integrations section: how Herald classifies
// producers' integration calls as they come in.
type Config struct {
	// Classify are the classification rules, tried in order before
	// Herald's defaults (classify.Defaults).
	Classify []classify.Rule `yaml:"classify"`
	// DefaultClassify includes the defaults after Classify (default true).
	DefaultClassify *bool `yaml:"defaultClassify"`
}

// LoadConfig reads the integrations section and compiles its rules; an
// error names the key at fault.
func LoadConfig(f *config.File) (*classify.Classifier, error) {
	var c Config
	if err := f.Section("integrations", &c); err != nil {
		return nil, err
	}
	rules := c.Classify
	if c.DefaultClassify == nil || *c.DefaultClassify {
		rules = append(rules, classify.Defaults()...)
	}
	cl, err := classify.New(rules)
	if err != nil {
		return nil, fmt.Errorf("%w: integrations.classify: %w", config.ErrInvalid, err)
	}
	return cl, nil
}
