package incident_test

import (
	"testing"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/incident"
)

// TestTheDefaultRulesPassTheirTests runs default_rules.test.yaml, the
// default rules' own rule tests (as herald rules test would).
func TestTheDefaultRulesPassTheirTests(t *testing.T) {
	cat, err := event.NewCatalog()
	if err != nil {
		t.Fatal(err)
	}
	rt, rules, err := incident.LoadRuleTests("default_rules.test.yaml", cat)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rt.Run(cat, rules) {
		for _, f := range r.Failures {
			t.Errorf("%s: %s", r.Name, f)
		}
	}
}
