package incident

import (
	_ "embed"

	"github.com/heraldhq/herald/pkg/event"
)

//go:embed default_rules.yaml
var defaultRules []byte

// DefaultRulesYAML is the default rule document: the runbook and the seed cases.
func DefaultRulesYAML() []byte { return defaultRules }

// DefaultRules compiles the default rules.
func DefaultRules(cat *event.Catalog) (*Rules, error) {
	return ParseRules("default rules", defaultRules, cat)
}
