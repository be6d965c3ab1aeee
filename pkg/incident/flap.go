package incident

import (
	"time"

	"github.com/heraldhq/herald/pkg/event"
)

// Flap control. A rule with `flap: {maxCycles: N, window: W}` counts, per
// group, the resolutions of its incidents within W. When an incident would
// resolve and N had already resolved within W before it, it is held open
// instead, as flapping: one incident (one thread) while the condition
// comes and goes. It resolves once the condition has been clear for W,
// dated when it last cleared. Its wire transitions are incident_escalated
// with From = To and `flapping` set (the start), later escalations with
// `flapping` set, and an ordinary incident_resolved: readers that know
// nothing of flapping see a long incident.

// flapping is the flapping field of inc's transitions (nil unless flapping).
func (r *rule) flapping(inc *Incident) *event.Flapping {
	if inc.State != event.StateFlapping {
		return nil
	}
	return &event.Flapping{Cycles: r.flapCycles, Window: time.Duration(r.flapWindow).String()}
}

// cycled records a resolution of g's incident at `at`, for flap control.
func (g *group) cycled(at int64) {
	if g.rs.r.flapCycles == 0 {
		g.cycles = nil
		return
	}
	g.cycles = append(g.cycles, at)
}

// pruneCycles forgets the resolutions older than the flap window at t.
func (g *group) pruneCycles(t int64) {
	w := g.rs.r.flapWindow
	i := 0
	for i < len(g.cycles) && (w == 0 || g.cycles[i]+w <= t) {
		i++
	}
	if i == len(g.cycles) {
		g.cycles = nil
		return
	}
	g.cycles = g.cycles[i:]
}

// flapHolds is the resolution of g's incident at `at` (decided at t, with
// the evidence ev at `at`) as flap control sees it: a flapping incident
// goes quiet, one whose group cycled too often starts flapping. It reports
// whether the incident is held open.
func (e *Engine) flapHolds(g *group, at, t int64, ev *event.Evidence) bool {
	inc, r := g.inc, g.rs.r
	if inc.State == event.StateFlapping {
		g.level, g.quiet = 0, at
		g.quietEv = ev
		return true
	}
	g.pruneCycles(at)
	if r.flapCycles == 0 || inc.State != event.StateOpen || len(g.cycles) < r.flapCycles {
		return false
	}
	inc.State, g.level, g.quiet, g.quietEv, g.cycles = event.StateFlapping, 0, at, ev, nil
	e.setEvidence(g, inc, ev)
	tr := e.record(inc, "incident_escalated", ts(at), t, inc.Severity, true)
	tr.Flapping = true
	e.emit(tr, event.IncidentEscalated{
		IncidentID: inc.ID, Rule: inc.Rule, Group: inc.Group.Map(), From: inc.Severity, To: inc.Severity, At: ts(at),
		Evidence: inc.Evidence, Ordinal: tr.PublishedOrdinal, Summary: inc.Summary, Flapping: r.flapping(inc),
	})
	return true
}

// flapReturns handles the condition of a quiet flapping incident holding
// again at level: at the same severity nothing is said (the incident never
// left); at another it is an escalation (false).
func (e *Engine) flapReturns(g *group, level int) bool {
	g.quiet, g.quietEv = 0, nil
	if rankLevel[level] != g.inc.Severity {
		return false
	}
	g.level = level
	return true
}

// flapQuiet resolves g's flapping incident once its condition has been
// clear for the flap window (at once if the rule no longer has flap
// control), dated when it cleared.
func (e *Engine) flapQuiet(g *group, t int64) {
	inc := g.inc
	if inc == nil || inc.State != event.StateFlapping || g.level != 0 || g.quiet+g.rs.r.flapWindow > t && g.rs.r.flapCycles > 0 {
		return
	}
	e.resolve(inc, g.quiet, t, g, g.quietEv)
	g.cycles = nil
}
