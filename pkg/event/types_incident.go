package event

import "time"

// Incident transitions, derived by the incident projection. Their ids are
// deterministic (rule, group, onset), so a rebuild reproduces them exactly.

// IncidentState is where an incident stands. It is the one vocabulary of
// states: the engine's records, the API, the notifier's messages and the CLI
// all use these values.
type IncidentState = string

// Incident states.
const (
	StateOpen       IncidentState = "open"
	StateSuppressed IncidentState = "suppressed"
	// StateFlapping: an open incident whose rule opened and resolved it
	// too often in its flap window; it is held open (one thread) until the
	// condition has been clear for the window.
	StateFlapping IncidentState = "flapping"
	StateResolved IncidentState = "resolved"
)

// Evidence is what made a rule's condition true, kept with each transition.
type Evidence struct {
	Failed   int      `json:"failed"`
	Total    int      `json:"total"`
	Ratio    float64  `json:"ratio"`
	Window   string   `json:"window"`
	Samples  []string `json:"samples,omitempty"` // requestIds
	FirstSeq uint64   `json:"firstSeq"`
	LastSeq  uint64   `json:"lastSeq"`
	// Classification and Reason are those of the latest matched event of a
	// match rule whose events carry one (integration_call_completed,
	// provider_response_failed): what the answer meant and why.
	Classification string `json:"classification,omitempty"`
	Reason         string `json:"reason,omitempty"`
}

// Flapping says an incident is held open by its rule's flap control: it
// opened and resolved more than Cycles times within Window.
type Flapping struct {
	Cycles int    `json:"cycles"`
	Window string `json:"window"`
}

// IncidentOpened: a rule's condition held long enough to open an incident.
type IncidentOpened struct {
	IncidentID string            `json:"incidentId"`
	Rule       string            `json:"rule"`
	Kind       string            `json:"kind"`
	Severity   string            `json:"severity"`
	Group      map[string]string `json:"group"`
	OpenedAt   time.Time         `json:"openedAt"`
	Summary    string            `json:"summary"`
	Runbook    string            `json:"runbook,omitempty"`
	Evidence   Evidence          `json:"evidence"`
	Ordinal    int               `json:"ordinal,omitempty"`
}

// IncidentEscalated: the severity of an open incident changed (up or down).
type IncidentEscalated struct {
	IncidentID string            `json:"incidentId"`
	Rule       string            `json:"rule"`
	Group      map[string]string `json:"group"`
	From       string            `json:"from"`
	To         string            `json:"to"`
	At         time.Time         `json:"at"`
	Evidence   Evidence          `json:"evidence"`
	Ordinal    int               `json:"ordinal,omitempty"`
	// Summary is the rule's summary rendered from this transition's
	// evidence (absent from events of older versions).
	Summary string `json:"summary,omitempty"`
	// Flapping is set while the incident is flapping; the transition that
	// starts it keeps the severity (From = To).
	Flapping *Flapping `json:"flapping,omitempty"`
}

// IncidentResolved: the condition was clear long enough to close the incident.
type IncidentResolved struct {
	IncidentID   string            `json:"incidentId"`
	Rule         string            `json:"rule"`
	Group        map[string]string `json:"group"`
	OpenedAt     time.Time         `json:"openedAt"`
	ResolvedAt   time.Time         `json:"resolvedAt"`
	PeakSeverity string            `json:"peakSeverity"`
	Evidence     Evidence          `json:"evidence"`
	Ordinal      int               `json:"ordinal,omitempty"`
	// Suppressed lists the other rules' incidents this one inhibited.
	Suppressed []string `json:"suppressed,omitempty"`
	// Summary is the rule's summary rendered from the resolving evidence
	// (absent from events of older versions).
	Summary string `json:"summary,omitempty"`
}

// IncidentSuppressed: a rule's incident would have opened, but an open
// incident of an inhibiting rule on the same group key suppressed it.
type IncidentSuppressed struct {
	IncidentID       string            `json:"incidentId"`
	Rule             string            `json:"rule"`
	Kind             string            `json:"kind"`
	Severity         string            `json:"severity"`
	Group            map[string]string `json:"group"`
	OpenedAt         time.Time         `json:"openedAt"`
	Summary          string            `json:"summary,omitempty"`
	SuppressedBy     string            `json:"suppressedBy"`
	SuppressedByRule string            `json:"suppressedByRule"`
	At               time.Time         `json:"at"`
	Evidence         Evidence          `json:"evidence"`
	Ordinal          int               `json:"ordinal"`
}

func (IncidentOpened) EventType() Type     { return "incident_opened" }
func (IncidentEscalated) EventType() Type  { return "incident_escalated" }
func (IncidentResolved) EventType() Type   { return "incident_resolved" }
func (IncidentSuppressed) EventType() Type { return "incident_suppressed" }
