package incidents_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/services/incidents"
)

// TestARulesFileRedefiningOneDefaultRuleResolvesItsReferencesAgainstAll: the
// file's otp-failure-rate names provider-payment-required, which only the
// defaults define; the merged set compiles, the file's version in force.
func TestARulesFileRedefiningOneDefaultRuleResolvesItsReferencesAgainstAll(t *testing.T) {
	cat, err := event.NewCatalog()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rules.yaml")
	doc := `rules:
  - name: otp-failure-rate
    kind: ratio
    summary: "{app}: {ratio}% failing"
    match: {types: [otp_delivery_completed]}
    failed: {where: ["status = failed"]}
    groupBy: [app]
    window: 10m
    severities: [{level: P1, above: 0.5}]
    inhibitedBy: [{rule: provider-payment-required, equal: [app]}]
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	c := incidents.DefaultConfig()
	c.RulesFile = path
	rules, err := c.CompileRules(cat)
	if err != nil {
		t.Fatal(err)
	}
	list := rules.List()
	if len(list) != 7 || list[0].Name != "otp-failure-rate" || list[0].Window.D().Minutes() != 10 {
		t.Fatalf("rules in force: %d, first %s window %s", len(list), list[0].Name, list[0].Window.D())
	}
	off := false
	c.DefaultRules = &off
	if _, err := c.CompileRules(cat); err == nil {
		t.Fatal("without the defaults, provider-payment-required exists nowhere: want an error")
	}
}
