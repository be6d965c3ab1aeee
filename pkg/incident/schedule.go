package incident

import "github.com/heraldhq/herald/pkg/event"

// Event time. The engine's clock moves only with the records it applies;
// what a group waits for (a condition held long enough, clear long enough,
// an absence, a window step) is its deadline, kept in e.timers and handled
// in (time, group) order as the clock passes it.

// AdvanceTo moves the clock to t (Unix nanoseconds) without an event,
// handling every deadline up to it: the end of a back-test range.
func (e *Engine) AdvanceTo(t int64) {
	if t <= e.now {
		return
	}
	e.cause = Record{Seq: e.seq, Time: t}
	e.advance(t)
}

// advance handles every deadline up to t, each at its own time.
func (e *Engine) advance(t int64) {
	for g := e.timers.take(t); g != nil; g = e.timers.take(t) {
		e.now = g.due
		e.eval(g, g.due)
	}
	e.now = max(e.now, t)
}

// NextDeadline is the earliest time at which the projection would change
// without a new event (0: none): when the live clock passes it, a tick is due.
func (e *Engine) NextDeadline() int64 {
	due, _ := e.timers.next()
	return due
}

// schedule computes g's next deadline after t, or retires an idle group.
func (e *Engine) schedule(g *group, t int64) {
	r := g.rs.r
	var due int64
	cand := func(x int64) {
		if x > t && (due == 0 || x < due) {
			due = x
		}
	}
	busy := g.inc != nil
	if g.pruneCycles(t); len(g.cycles) > 0 {
		busy = true // remembered for flap control until the window passes
		cand(g.cycles[0] + r.flapWindow)
	}
	if g.inc != nil && g.inc.State == event.StateFlapping && g.level == 0 {
		cand(g.quiet + r.flapWindow)
	}
	for i := range r.sev {
		s, st := &r.sev[i], &g.sev[i]
		if st.Since != 0 || st.Active {
			busy = true
		}
		if !st.Active && st.Since != 0 {
			cand(st.Since + s.forDur)
		}
		if st.Active && st.Clear != 0 {
			cand(st.Clear + r.resolveFor)
		}
		if r.kind == KindAbsence && st.Since == 0 && g.activeSince != 0 {
			cand(g.absenceOnset(s))
		}
	}
	switch r.kind {
	case KindRatio, KindCount:
		if g.w.total > 0 {
			if busy {
				o, _ := g.w.oldest()
				cand((o + int64(r.buckets)) * r.step)
			} else {
				cand((g.w.head + int64(r.buckets)) * r.step)
			}
		} else if !busy {
			e.retire(g)
			return
		}
	case KindMatch:
		if g.hits == 0 && !busy {
			e.retire(g)
			return
		}
	}
	g.due = due
	e.timers.set(g)
}

// retire forgets an idle group: nothing counted, no condition, no incident.
func (e *Engine) retire(g *group) {
	g.dead = true
	delete(g.rs.groups, g.key)
}
