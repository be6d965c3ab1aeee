package incidents_test

import (
	"testing"

	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/incidents"
)

// TestARulesFileRedefiningOneDefaultRuleResolvesItsReferencesAgainstAll: the
// file's otp-failure-rate names provider-payment-required, which only the
// defaults define; the merged set compiles, the file's version in force.
func TestARulesFileRedefiningOneDefaultRuleResolvesItsReferencesAgainstAll(t *testing.T) {
	cat := heraldtest.Catalog(t)
	c := incidents.DefaultConfig()
	c.RulesFile = "../../pkg/incident/testdata/override-one-default.yaml"
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
