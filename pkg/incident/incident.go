package incident

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/event"
)

// Incident is the engine's record of one incident: the state the fold keeps
// and the snapshot saves, with its whole history of transitions. It is the
// first of the incident's shapes by layer: services/incidents serves it
// whole (GET /v1/incidents/{id}) and lists it as incidents.Summary; the
// transitions go out as the event.Incident* wire events.
type Incident struct {
	ID           string              `json:"id"`
	Rule         string              `json:"rule"`
	Kind         string              `json:"kind"`
	Group        Labels              `json:"group"`
	State        event.IncidentState `json:"state"` // event.StateOpen, StateFlapping, StateSuppressed or StateResolved
	Severity     string              `json:"severity"`
	PeakSeverity string              `json:"peakSeverity"`
	OpenedAt     time.Time           `json:"openedAt"`
	ResolvedAt   *time.Time          `json:"resolvedAt,omitempty"`
	Summary      string              `json:"summary"`
	Runbook      string              `json:"runbook,omitempty"`
	// SuppressedBy is the inhibiting incident while (or if, once resolved)
	// this one was suppressed.
	SuppressedBy string `json:"suppressedBy,omitempty"`
	// Suppressions are the other rules' incidents this one inhibited.
	Suppressions []Suppression  `json:"suppressions,omitempty"`
	Evidence     event.Evidence `json:"evidence"`
	Transitions  []Transition   `json:"transitions"`
}

// Suppression records one incident inhibited by another.
type Suppression struct {
	IncidentID string    `json:"incidentId"`
	Rule       string    `json:"rule"`
	Group      Labels    `json:"group"`
	Severity   string    `json:"severity"`
	At         time.Time `json:"at"`
}

// Transition is one step of an incident's history.
type Transition struct {
	Ordinal int    `json:"ordinal"`
	Type    string `json:"type"`
	// At is the transition's own time: the onset, the escalation, the
	// resolution; DecidedAt the event time at which it was known.
	At        time.Time `json:"at"`
	DecidedAt time.Time `json:"decidedAt"`
	Severity  string    `json:"severity"`
	From      string    `json:"from,omitempty"`
	// Published: the transition went to INCIDENTS as EventID on Subject,
	// with PublishedOrdinal (not while the incident was suppressed).
	Published        bool           `json:"published"`
	EventID          string         `json:"eventId,omitempty"`
	Subject          string         `json:"subject,omitempty"`
	PublishedOrdinal int            `json:"publishedOrdinal,omitempty"`
	CauseSeq         uint64         `json:"causeSeq"`
	Evidence         event.Evidence `json:"evidence"`
	// Flapping: the incident was flapping (held open by flap control);
	// on an escalation with From = Severity, the start of it.
	Flapping bool `json:"flapping,omitempty"`
}

// incidentID derives an incident's id from its rule, group and onset.
func incidentID(rule string, group []string, groupBy []string, onset int64, n int) string {
	h := sha256.New()
	h.Write([]byte(rule))
	h.Write([]byte{0})
	for i, f := range groupBy {
		h.Write([]byte(f))
		h.Write([]byte{'='})
		h.Write([]byte(group[i]))
		h.Write([]byte{0})
	}
	h.Write([]byte(strconv.FormatInt(onset, 10)))
	if n > 0 {
		h.Write([]byte{0})
		h.Write([]byte(strconv.Itoa(n)))
	}
	return "inc-" + hex.EncodeToString(h.Sum(nil))[:20]
}

// summary fills a rule's summary template.
func summary(r *rule, g *group, level string, ev event.Evidence) string {
	tpl := r.cfg.Summary
	if tpl == "" {
		var parts []string
		for i, f := range r.cfg.GroupBy {
			parts = append(parts, f+"="+g.vals[i])
		}
		tpl = "{rule}: " + r.kind + " condition on " + strings.Join(parts, ", ")
		if len(parts) == 0 {
			tpl = "{rule}: " + r.kind + " condition"
		}
	}
	repl := []string{"{rule}", r.cfg.Name, "{severity}", level, "{failed}", strconv.Itoa(ev.Failed),
		"{total}", strconv.Itoa(ev.Total), "{ratio}", strconv.Itoa(int(ev.Ratio*100 + 0.5)), "{window}", ev.Window}
	for i, f := range r.cfg.GroupBy {
		repl = append(repl, "{"+f+"}", g.vals[i])
	}
	s := strings.NewReplacer(repl...).Replace(tpl)
	if len(s) > 512 {
		s = s[:509] + "…"
	}
	return s
}
