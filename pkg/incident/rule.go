// Package incident is Herald's incident projection: a deterministic fold of
// the event log through configurable rules (ratio, count, absence, match)
// into incidents with a start, an end, a severity that escalates and
// de-escalates inside one incident, evidence, and inhibition between rules.
//
// The engine is pure: it reads records (event time, stream sequence, type,
// JSON data) and produces transitions; it never reads the wall clock. Time
// advances only with the records it is given, so the same log always gives
// the same incidents, live or rebuilt.
package incident

import (
	"github.com/heraldhq/herald/pkg/config"
)

// Rule kinds.
const (
	KindRatio   = "ratio"
	KindCount   = "count"
	KindAbsence = "absence"
	KindMatch   = "match"
)

// RuleSet is a rules file: `rules:` followed by a list of rules.
type RuleSet struct {
	Rules []Rule `yaml:"rules" json:"rules"`
}

// Rule is one alerting rule as written in configuration.
type Rule struct {
	// Name identifies the rule; it is part of every incident id.
	Name string `yaml:"name" json:"name"`
	// Kind is ratio, count, absence or match.
	Kind        string `yaml:"kind" json:"kind"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Summary is a one-line template: {field} for a group field, and
	// {rule}, {severity}, {failed}, {total}, {ratio} (percent), {window}.
	Summary string `yaml:"summary,omitempty" json:"summary,omitempty"`
	Runbook string `yaml:"runbook,omitempty" json:"runbook,omitempty"`

	// Match selects the events the rule counts: for ratio the population,
	// for count and match the hits, for absence the expected (successful) event.
	Match Matcher `yaml:"match" json:"match"`
	// Failed (ratio only) selects the failures among the matched events.
	Failed *Filter `yaml:"failed,omitempty" json:"failed,omitempty"`
	// Activity (absence only) says the group is being called; the absence
	// condition needs activity since the last matched event.
	Activity *Matcher `yaml:"activity,omitempty" json:"activity,omitempty"`
	// Clear (match only) clears the condition, e.g. a later success.
	Clear *Matcher `yaml:"clear,omitempty" json:"clear,omitempty"`

	// GroupBy names the data fields that key a group (app, provider, …).
	GroupBy []string `yaml:"groupBy,omitempty" json:"groupBy,omitempty"`
	// Window is the sliding window of ratio and count rules, counted in
	// Resolution-sized steps (default Window/20).
	Window     config.Duration `yaml:"window,omitempty" json:"window,omitempty"`
	Resolution config.Duration `yaml:"resolution,omitempty" json:"resolution,omitempty"`
	// MinVolume (ratio) is the fewest matched events in the window for the
	// ratio to mean anything: 1 failure out of 2 is not "50 %".
	MinVolume int `yaml:"minVolume,omitempty" json:"minVolume,omitempty"`

	Severities []Severity `yaml:"severities" json:"severities"`
	// Resolve is the hysteresis on the way down: a severity is left, and
	// the incident resolved, only once the condition was clear this long.
	Resolve Resolve `yaml:"resolve,omitempty" json:"resolve,omitzero"`
	// InhibitedBy: while an incident of one of these rules is open on the
	// same values of Equal, this rule's incidents are suppressed (recorded).
	InhibitedBy []Inhibition `yaml:"inhibitedBy,omitempty" json:"inhibitedBy,omitempty"`
	// Flap is flap control (off without it): a group whose incidents opened
	// and resolved more than MaxCycles times within Window keeps its next
	// incident open, flapping, until the condition has been clear for Window.
	Flap *Flap `yaml:"flap,omitempty" json:"flap,omitempty"`
}

// Flap is a rule's flap control.
type Flap struct {
	MaxCycles int             `yaml:"maxCycles" json:"maxCycles"`
	Window    config.Duration `yaml:"window" json:"window"`
}

// Matcher selects events by type and by predicates on their data.
type Matcher struct {
	Types []string `yaml:"types" json:"types"`
	Where []string `yaml:"where,omitempty" json:"where,omitempty"`
}

// Filter is a list of predicates on data already matched by type.
type Filter struct {
	Where []string `yaml:"where" json:"where"`
}

// Severity is one level, its threshold and how long it must hold.
type Severity struct {
	// Level is P1, P2 or P3.
	Level string `yaml:"level" json:"level"`
	// Above (strictly) or AtLeast: the threshold on the rule's measure —
	// the failure ratio (0–1), the count in the window, or the hits of a match.
	Above   *float64 `yaml:"above,omitempty" json:"above,omitempty"`
	AtLeast *float64 `yaml:"atLeast,omitempty" json:"atLeast,omitempty"`
	// After (absence only): how long without a matched event.
	After config.Duration `yaml:"after,omitempty" json:"after,omitempty"`
	// For is how long the threshold must hold before the level is reached.
	For config.Duration `yaml:"for,omitempty" json:"for,omitempty"`
}

// Resolve is the resolve hysteresis.
type Resolve struct {
	For config.Duration `yaml:"for,omitempty" json:"for,omitempty"`
}

// Inhibition names a rule whose open incidents suppress this rule's.
type Inhibition struct {
	Rule  string   `yaml:"rule" json:"rule"`
	Equal []string `yaml:"equal,omitempty" json:"equal,omitempty"`
}
