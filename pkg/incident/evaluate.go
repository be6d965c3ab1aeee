package incident

import (
	"time"

	"github.com/heraldhq/herald/pkg/event"
)

// evaluate brings g's severities up to t: whether each condition holds and
// since when, and which levels are reached (held for the severity's `for`)
// or left (clear for the rule's resolveFor). It returns the level in force
// (the rank of the first active severity, 0: none), and the earliest reach
// and the latest clear of this evaluation (0: none), which date the
// transition. downEv is the evidence at that latest clear: a de-escalation
// or a resolution is dated when its threshold stopped holding and shows
// what was counted then, not what was counted when the hysteresis ran out.
func (g *group) evaluate(t int64) (level int, upAt, downAt int64, downEv *event.Evidence) {
	r := g.rs.r
	if r.buckets > 0 {
		g.w.roll(floorDiv(t, r.step))
	}
	for i := range r.sev {
		s, st := &r.sev[i], &g.sev[i]
		holds, since := g.cond(r, s, t)
		if holds {
			if st.Since == 0 {
				st.Since = since
			}
			st.Clear, st.ClearEv = 0, nil
		} else {
			st.Since = 0
			if st.Active && st.Clear == 0 {
				ev := g.evidence()
				st.Clear, st.ClearEv = t, &ev
			}
		}
		if !st.Active && st.Since != 0 && st.Since+s.forDur <= t {
			st.Active, st.ActiveAt = true, st.Since+s.forDur
			if upAt == 0 || st.ActiveAt < upAt {
				upAt = st.ActiveAt
			}
		}
		if st.Active && st.Clear != 0 && st.Clear+r.resolveFor <= t {
			if st.Clear >= downAt {
				downAt, downEv = st.Clear, st.ClearEv
			}
			st.Active, st.ActiveAt, st.ClearEv = false, 0, nil
		}
	}
	for i := range r.sev {
		if g.sev[i].Active {
			return r.sev[i].rank, upAt, downAt, downEv
		}
	}
	return 0, upAt, downAt, downEv
}

// onset is when g's incident starts: the earliest reach among its active
// severities, or upAt.
func (g *group) onset(upAt int64) int64 {
	onset := upAt
	for i := range g.sev {
		if a := g.sev[i].ActiveAt; g.sev[i].Active && a != 0 && (onset == 0 || a < onset) {
			onset = a
		}
	}
	return onset
}

// cond reports whether severity s holds for g at t, and since when.
func (g *group) cond(r *rule, s *sevSpec, t int64) (bool, int64) {
	switch r.kind {
	case KindRatio:
		if g.w.total == 0 || g.w.total < r.minVolume {
			return false, 0
		}
		return cmp(float64(g.w.failed)/float64(g.w.total), s), t
	case KindCount:
		return g.w.total > 0 && cmp(float64(g.w.total), s), t
	case KindMatch:
		return g.hits > 0 && cmp(float64(g.hits), s), t
	default: // absence
		if g.activeSince == 0 {
			return false, 0
		}
		onset := g.absenceOnset(s)
		return t >= onset, onset
	}
}

// absenceOnset: no matched event for `after`, while being called.
func (g *group) absenceOnset(s *sevSpec) int64 {
	if g.lastOK == 0 {
		return g.activeSince + s.after
	}
	return max(g.lastOK+s.after, g.activeSince)
}

func cmp(v float64, s *sevSpec) bool {
	if s.strict {
		return v > s.threshold
	}
	return v >= s.threshold
}

func (r *rule) rankIndex(rank int) int {
	for i := range r.sev {
		if r.sev[i].rank == rank {
			return i
		}
	}
	return 0
}

// evidence is what g counted, as its incident's transitions carry it.
func (g *group) evidence() event.Evidence {
	r := g.rs.r
	var ev event.Evidence
	switch r.kind {
	case KindRatio, KindCount:
		ev.Failed, ev.Total = g.w.failed, g.w.total
		if r.kind == KindCount {
			ev.Failed = ev.Total
		}
		ev.Window = r.cfg.Window.D().String()
		ev.FirstSeq, ev.LastSeq = g.w.firstSeq(), g.lastSeq
	case KindAbsence:
		ev.Failed, ev.Total = g.activity, g.activity
		ev.Window = time.Duration(r.sev[len(r.sev)-1].after).String()
		ev.FirstSeq, ev.LastSeq = g.actSeq, g.lastSeq
		if g.lastOKSeq != 0 {
			ev.FirstSeq = g.lastOKSeq
		}
		if g.activity == 0 {
			ev.LastSeq = g.lastOKSeq
		}
	case KindMatch:
		ev.Failed, ev.Total = g.hits, g.hits
		ev.FirstSeq, ev.LastSeq = g.firstHit, g.lastSeq
		if g.hits > 0 {
			ev.Classification, ev.Reason = g.class, g.reason
		}
	}
	if ev.Total > 0 {
		ev.Ratio = float64(ev.Failed) / float64(ev.Total)
	}
	n := min(g.ns, nSamples)
	for i := g.ns - n; i < g.ns; i++ {
		ev.Samples = append(ev.Samples, g.samples[i%nSamples])
	}
	return ev
}
