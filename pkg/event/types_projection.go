package event

import "time"

// Facts a projection records in the raw log so that folding the log alone
// reproduces what it computed live.

// ClockTick: the wall clock said it was ce-time at this point of the log. A
// projection waiting on time (a `for` duration, an absence) publishes one
// when a deadline passed and no event moved event time past it.
type ClockTick struct {
	Projection string    `json:"projection"`
	Deadline   time.Time `json:"deadline"`
}

// IncidentRulesLoaded: the incident rule set in force from here on.
type IncidentRulesLoaded struct {
	Fingerprint string   `json:"fingerprint"`
	Source      string   `json:"source"`
	Rules       []string `json:"rules"`
	Document    string   `json:"document"`
}

func (ClockTick) EventType() Type           { return "clock_tick" }
func (IncidentRulesLoaded) EventType() Type { return "incident_rules_loaded" }
