package incident

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
)

// RuleTests is a rule test file (herald rules test), in the spirit of
// promtool's rule tests: series of events at times from a start, and the
// incidents expected at given times. The engine is a pure fold on event
// time, so a test runs in microseconds and always gives the same answer.
type RuleTests struct {
	// RuleFiles are laid over the default rules (unless DefaultRules is
	// false), in order, as incident.rulesFile is; paths are relative to
	// the test file.
	RuleFiles    []string `yaml:"ruleFiles"`
	DefaultRules *bool    `yaml:"defaultRules"`
	// Start is every test's time zero (default 2026-01-01T00:00:00Z).
	Start time.Time  `yaml:"start"`
	Tests []RuleTest `yaml:"tests"`
}

// RuleTest is one scenario.
type RuleTest struct {
	Name   string         `yaml:"name"`
	Events []TestEvents   `yaml:"events"`
	Expect []TestExpected `yaml:"expect"`
}

// TestEvents is one event, or a series of it: Times events Every apart
// from At.
type TestEvents struct {
	At        config.Duration `yaml:"at"`
	Every     config.Duration `yaml:"every"`
	Times     int             `yaml:"times"`
	Type      string          `yaml:"type"`
	RequestID string          `yaml:"requestId"`
	Data      map[string]any  `yaml:"data"`
}

// TestExpected is the incidents expected At a time: exactly these, opened
// at or before it, matched by rule and group (several of one rule and
// group in order, newest onset first).
type TestExpected struct {
	At        config.Duration    `yaml:"at"`
	Incidents []ExpectedIncident `yaml:"incidents"`
}

// ExpectedIncident is one incident as a test expects it; empty fields are
// not compared.
type ExpectedIncident struct {
	Rule     string            `yaml:"rule"`
	Group    map[string]string `yaml:"group"`
	State    string            `yaml:"state"`
	Severity string            `yaml:"severity"`
	// OpenedAt is the onset, from the start.
	OpenedAt *config.Duration `yaml:"openedAt"`
	// Transitions are the history, in order: each its type without
	// "incident_" (opened, escalated, resolved, suppressed, and flapping
	// for the escalation that starts flap control's hold), or type and
	// severity after it ("escalated:P1").
	Transitions []string `yaml:"transitions"`
}

// RuleTestResult is one test's outcome.
type RuleTestResult struct {
	Name     string   `json:"name"`
	Failures []string `json:"failures,omitempty"`
}

// LoadRuleTests reads a test file and compiles the rules it names.
func LoadRuleTests(path string, cat *event.Catalog) (*RuleTests, *Rules, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	var rt RuleTests
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rt); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", config.ErrInvalid, path, err)
	}
	if len(rt.Tests) == 0 {
		return nil, nil, fmt.Errorf("%w: %s: no tests (the file needs \"tests:\" and a list)", config.ErrInvalid, path)
	}
	if rt.Start.IsZero() {
		rt.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	var layers []Layer
	if rt.DefaultRules == nil || *rt.DefaultRules {
		d, err := DefaultLayer()
		if err != nil {
			return nil, nil, err
		}
		layers = append(layers, d)
	}
	for _, f := range rt.RuleFiles {
		p := f
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(path), f)
		}
		doc, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: ruleFiles: %w", config.ErrInvalid, path, err)
		}
		rs, err := DecodeRules(p, doc)
		if err != nil {
			return nil, nil, err
		}
		layers = append(layers, Layer{Source: p, Rules: rs.Rules})
	}
	set, source := Merge(layers...)
	rules, err := Compile(source, set, cat)
	if err != nil {
		return nil, nil, err
	}
	return &rt, rules, nil
}

// Run runs every test on a fresh engine each. An event that does not fit
// its schema is a failure of its test, named by its index.
func (rt *RuleTests) Run(cat *event.Catalog, rules *Rules) []RuleTestResult {
	out := make([]RuleTestResult, len(rt.Tests))
	for i, t := range rt.Tests {
		out[i] = RuleTestResult{Name: t.Name, Failures: rt.run(cat, rules, t)}
		if out[i].Name == "" {
			out[i].Name = fmt.Sprintf("test %d", i)
		}
	}
	return out
}

func (rt *RuleTests) run(cat *event.Catalog, rules *Rules, t RuleTest) []string {
	recs, err := rt.records(cat, t)
	if err != nil {
		return []string{err.Error()}
	}
	checks := slices.Clone(t.Expect)
	slices.SortStableFunc(checks, func(a, b TestExpected) int { return order(a.At, b.At) })
	e := NewEngine(Options{Catalog: cat, Rules: rules, KeepResolved: 1 << 30})
	var fails []string
	next := 0
	for _, c := range checks {
		at := rt.Start.Add(c.At.D()).UnixNano()
		for ; next < len(recs) && recs[next].Time <= at; next++ {
			e.Apply(&recs[next])
			e.Drain()
		}
		e.AdvanceTo(at)
		e.Drain()
		fails = append(fails, rt.compare(c, e.Incidents())...)
	}
	return fails
}

// records expands the series into the log's records, in time order.
func (rt *RuleTests) records(cat *event.Catalog, t RuleTest) ([]Record, error) {
	var recs []Record
	for i, ev := range t.Events {
		raw, err := json.Marshal(ev.Data)
		if err != nil {
			return nil, fmt.Errorf("events[%d]: data: %w", i, err)
		}
		if err := cat.Validate(event.Type(ev.Type), raw); err != nil {
			return nil, fmt.Errorf("events[%d]: %w", i, err)
		}
		for n := range max(ev.Times, 1) {
			at := rt.Start.Add(ev.At.D() + time.Duration(n)*ev.Every.D())
			recs = append(recs, Record{Time: at.UnixNano(), Type: ev.Type, ID: fmt.Sprintf("test-%d-%d", i, n), RequestID: ev.RequestID, Data: raw})
		}
	}
	slices.SortStableFunc(recs, func(a, b Record) int { return order(a.Time, b.Time) })
	for i := range recs {
		recs[i].Seq = uint64(i + 1)
	}
	return recs, nil
}

// compare matches the incidents that exist at c.At with the expected ones.
func (rt *RuleTests) compare(c TestExpected, got []*Incident) []string {
	var fails []string
	at := c.At.D().String()
	used := make([]bool, len(got))
	for _, want := range c.Incidents {
		i := -1
		for j, inc := range got {
			if !used[j] && inc.Rule == want.Rule && (want.Group == nil || maps.Equal(inc.Group.Map(), want.Group)) {
				i = j
				break
			}
		}
		if i < 0 {
			fails = append(fails, fmt.Sprintf("at %s: no incident of %s %v", at, want.Rule, want.Group))
			continue
		}
		used[i] = true
		fails = append(fails, rt.compareOne(at, want, got[i])...)
	}
	for i, inc := range got {
		if !used[i] {
			fails = append(fails, fmt.Sprintf("at %s: unexpected incident of %s %v (%s %s)", at, inc.Rule, inc.Group.Map(), inc.State, inc.Severity))
		}
	}
	return fails
}

func (rt *RuleTests) compareOne(at string, want ExpectedIncident, inc *Incident) []string {
	var fails []string
	what := fmt.Sprintf("at %s: %s %v", at, inc.Rule, inc.Group.Map())
	if want.State != "" && want.State != inc.State {
		fails = append(fails, fmt.Sprintf("%s: state %s, want %s", what, inc.State, want.State))
	}
	if want.Severity != "" && want.Severity != inc.Severity {
		fails = append(fails, fmt.Sprintf("%s: severity %s, want %s", what, inc.Severity, want.Severity))
	}
	if want.OpenedAt != nil {
		if onset := inc.OpenedAt.Sub(rt.Start); onset != want.OpenedAt.D() {
			fails = append(fails, fmt.Sprintf("%s: opened at %s, want %s", what, onset, want.OpenedAt.D()))
		}
	}
	if want.Transitions != nil {
		var got, full []string
		for i, tr := range inc.Transitions {
			typ := strings.TrimPrefix(tr.Type, "incident_")
			if tr.Flapping && tr.From == tr.Severity {
				typ = "flapping"
			}
			full = append(full, typ+":"+tr.Severity)
			if i < len(want.Transitions) && strings.Contains(want.Transitions[i], ":") {
				typ = full[i]
			}
			got = append(got, typ)
		}
		if !slices.Equal(got, want.Transitions) {
			fails = append(fails, fmt.Sprintf("%s: transitions %v, want %v", what, full, want.Transitions))
		}
	}
	return fails
}

// order compares two times (cmp.Compare; the package has its own cmp).
func order[T ~int64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
