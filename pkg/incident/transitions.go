package incident

import (
	"fmt"
	"sort"
	"time"

	"github.com/heraldhq/herald/pkg/event"
)

// transition moves g's incident to level, the level its evaluation at t
// put in force: it opens one, escalates or de-escalates it, or resolves it
// (or, with flap control, holds it open as flapping: see flap.go).
// upAt and downAt are the evaluation's earliest reach and latest clear,
// the transition's own time; downEv the evidence at downAt.
func (e *Engine) transition(g *group, level int, upAt, downAt int64, downEv *event.Evidence, t int64) {
	// Times default to now when a level changed without a reach or a clear
	// of its own in this evaluation (a rule reloaded with other levels).
	orNow := func(x int64) int64 {
		if x == 0 {
			return t
		}
		return x
	}
	switch {
	case level == g.level:
	case g.inc == nil && level > 0:
		e.openIncident(g, level, orNow(g.onset(upAt)), t)
	case g.inc != nil && level > 0:
		if g.level == 0 && e.flapReturns(g, level) {
			return
		}
		at, ev := downAt, downEv
		if level > g.level {
			at, ev = g.sev[g.rs.r.rankIndex(level)].ActiveAt, nil
		}
		e.escalate(g, level, orNow(at), t, ev)
	case g.inc != nil:
		if e.flapHolds(g, orNow(downAt), t, downEv) {
			return
		}
		e.resolve(g.inc, orNow(downAt), t, g, downEv)
	}
}

// openIncident opens g's incident at onset (decided at t), suppressed from
// the start if an open incident inhibits it.
func (e *Engine) openIncident(g *group, level int, onset, t int64) {
	r := g.rs.r
	id := ""
	for n := 0; ; n++ {
		id = incidentID(r.cfg.Name, g.vals, r.cfg.GroupBy, onset, n)
		if _, taken := e.incidents[id]; !taken {
			break
		}
	}
	ev := g.evidence()
	lv := rankLevel[level]
	inc := &Incident{
		ID: id, Rule: r.cfg.Name, Kind: r.kind, Group: g.labels(), State: event.StateOpen,
		Severity: lv, PeakSeverity: lv, OpenedAt: ts(onset), Summary: summary(r, g, lv, ev),
		Runbook: r.cfg.Runbook, Evidence: ev,
	}
	g.inc, g.level = inc, level
	e.incidents[id] = inc
	e.setOpen(inc)
	if by := e.inhibitor(r, inc); by != nil {
		e.suppress(inc, by, t)
		return
	}
	e.publishOpened(inc, t)
}

func (e *Engine) publishOpened(inc *Incident, t int64) {
	tr := e.record(inc, "incident_opened", inc.OpenedAt, t, "", true)
	e.emit(tr, event.IncidentOpened{
		IncidentID: inc.ID, Rule: inc.Rule, Kind: inc.Kind, Severity: inc.Severity, Group: inc.Group.Map(),
		OpenedAt: inc.OpenedAt, Summary: inc.Summary, Runbook: inc.Runbook, Evidence: inc.Evidence, Ordinal: tr.PublishedOrdinal,
	})
}

// escalate changes the severity of g's incident, up or down, at `at`
// (decided at t), with the evidence ev at `at` (nil: the evidence now). A
// suppressed incident records it without publishing.
func (e *Engine) escalate(g *group, level int, at, t int64, ev *event.Evidence) {
	inc := g.inc
	from, to := inc.Severity, rankLevel[level]
	inc.Severity = to
	if level > levelRank[inc.PeakSeverity] {
		inc.PeakSeverity = to
	}
	g.level = level
	e.setEvidence(g, inc, ev)
	pub := live(inc)
	tr := e.record(inc, "incident_escalated", ts(at), t, from, pub)
	tr.Flapping = inc.State == event.StateFlapping
	if pub {
		e.emit(tr, event.IncidentEscalated{
			IncidentID: inc.ID, Rule: inc.Rule, Group: inc.Group.Map(), From: from, To: to, At: ts(at),
			Evidence: inc.Evidence, Ordinal: tr.PublishedOrdinal, Summary: inc.Summary, Flapping: g.rs.r.flapping(inc),
		})
	}
}

// setEvidence gives inc the evidence ev (nil: g's evidence now) and the
// summary rendered from it, so that what the incident says and what it
// shows as evidence are always of the same moment.
func (e *Engine) setEvidence(g *group, inc *Incident, ev *event.Evidence) {
	if ev == nil {
		x := g.evidence()
		ev = &x
	}
	inc.Evidence = *ev
	inc.Summary = summary(g.rs.r, g, inc.Severity, inc.Evidence)
}

// live reports whether inc's transitions are published: open or flapping
// (held open), not suppressed or resolved.
func live(inc *Incident) bool {
	return inc.State == event.StateOpen || inc.State == event.StateFlapping
}

// resolve closes inc at `at` (decided at t), with the evidence ev at `at`
// (nil: the evidence now), and releases what it suppressed. g is its
// group, nil if the group is gone.
func (e *Engine) resolve(inc *Incident, at, t int64, g *group, ev *event.Evidence) {
	if g != nil {
		e.setEvidence(g, inc, ev)
		g.inc, g.level = nil, 0
		g.cycled(at)
	}
	rat := ts(at)
	wasOpen := live(inc)
	inc.State, inc.ResolvedAt = event.StateResolved, &rat
	delete(e.open[inc.Rule], inc.ID)
	tr := e.record(inc, "incident_resolved", rat, t, "", wasOpen)
	if wasOpen {
		var ids []string
		for _, s := range inc.Suppressions {
			ids = append(ids, s.IncidentID)
		}
		e.emit(tr, event.IncidentResolved{
			IncidentID: inc.ID, Rule: inc.Rule, Group: inc.Group.Map(), OpenedAt: inc.OpenedAt, ResolvedAt: rat,
			PeakSeverity: inc.PeakSeverity, Evidence: inc.Evidence, Ordinal: tr.PublishedOrdinal, Suppressed: ids,
			Summary: inc.Summary,
		})
		e.releaseAll(inc, t)
	}
	e.resolved = append(e.resolved, inc.ID)
	for len(e.resolved) > e.opts.KeepResolved {
		delete(e.incidents, e.resolved[0])
		e.resolved = e.resolved[1:]
	}
}

// setOpen indexes an open (or suppressed) incident by rule, for inhibition.
func (e *Engine) setOpen(inc *Incident) {
	m := e.open[inc.Rule]
	if m == nil {
		m = map[string]*Incident{}
		e.open[inc.Rule] = m
	}
	m[inc.ID] = inc
}

// record appends a transition to inc's history. A published transition
// gets its subject: incidents.<type>.<id>.<ordinal>, the ordinal counting
// the incident's published opened/escalated/resolved transitions (so
// incident_opened is always 0 for its consumers), and suppressions
// counted apart on their own type's subjects.
func (e *Engine) record(inc *Incident, typ string, at time.Time, t int64, from string, published bool) *Transition {
	tr := Transition{
		Ordinal: len(inc.Transitions), Type: typ, At: at, DecidedAt: ts(t), Severity: inc.Severity, From: from,
		Published: published, CauseSeq: e.cause.Seq, Evidence: inc.Evidence,
	}
	if published {
		n := 0
		for _, x := range inc.Transitions {
			if x.Published && (x.Type == "incident_suppressed") == (typ == "incident_suppressed") {
				n++
			}
		}
		tr.PublishedOrdinal = n
		tr.EventID = fmt.Sprintf("%s.%d", inc.ID, n)
		if typ == "incident_suppressed" {
			tr.EventID = fmt.Sprintf("%s.suppressed.%d", inc.ID, n)
		}
		tr.Subject = fmt.Sprintf("incidents.%s.%s.%d", typ, inc.ID, n)
	}
	inc.Transitions = append(inc.Transitions, tr)
	return &inc.Transitions[len(inc.Transitions)-1]
}

// emit queues a published transition's event for Drain.
func (e *Engine) emit(tr *Transition, data event.Data) {
	ev := event.New(Source, data, event.WithID(tr.EventID), event.WithTime(tr.DecidedAt), event.WithSubject(tr.Subject))
	ev.CausationID = e.cause.ID
	e.out = append(e.out, ev)
}

// labels are g's group-by values, sorted by name.
func (g *group) labels() Labels {
	l := make(Labels, len(g.vals))
	for i, f := range g.rs.r.cfg.GroupBy {
		l[i] = Label{f, g.vals[i]}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	return l
}

func ts(ns int64) time.Time { return time.Unix(0, ns).UTC() }
