package incident

import "github.com/heraldhq/herald/pkg/event"

// Inhibition: an incident that would open while an open incident of one of
// its rule's inhibitors (on the same values of the `equal` fields) exists is
// suppressed instead: recorded, published as incident_suppressed, and
// opened for real only if it still holds once every inhibitor resolved.

// inhibitor returns the open incident (smallest id) that suppresses inc.
func (e *Engine) inhibitor(r *rule, inc *Incident) *Incident {
	var best *Incident
	for _, in := range r.inhibitors {
		for _, o := range e.open[in.rule] {
			if !live(o) || o == inc {
				continue
			}
			match := true
			for _, f := range in.equal {
				if o.Group.Get(f) != inc.Group.Get(f) {
					match = false
					break
				}
			}
			if match && (best == nil || o.ID < best.ID) {
				best = o
			}
		}
	}
	return best
}

// suppress records that by inhibits inc, at t.
func (e *Engine) suppress(inc, by *Incident, t int64) {
	inc.State, inc.SuppressedBy = event.StateSuppressed, by.ID
	by.Suppressions = append(by.Suppressions, Suppression{IncidentID: inc.ID, Rule: inc.Rule, Group: inc.Group, Severity: inc.Severity, At: ts(t)})
	tr := e.record(inc, "incident_suppressed", ts(t), t, "", true)
	e.emit(tr, event.IncidentSuppressed{
		IncidentID: inc.ID, Rule: inc.Rule, Kind: inc.Kind, Severity: inc.Severity, Group: inc.Group.Map(),
		OpenedAt: inc.OpenedAt, Summary: inc.Summary, SuppressedBy: by.ID, SuppressedByRule: by.Rule,
		At: ts(t), Evidence: inc.Evidence, Ordinal: tr.PublishedOrdinal,
	})
}

// releaseAll releases, at t, the incidents that the resolved inc still
// suppressed.
func (e *Engine) releaseAll(inc *Incident, t int64) {
	for _, s := range inc.Suppressions {
		if other := e.incidents[s.IncidentID]; other != nil && other.State == event.StateSuppressed && other.SuppressedBy == inc.ID {
			e.release(other, t)
		}
	}
}

// release opens a suppressed incident whose inhibitor resolved, unless
// another open incident inhibits it.
func (e *Engine) release(inc *Incident, t int64) {
	rs := e.states[inc.Rule]
	if rs == nil {
		return
	}
	if by := e.inhibitor(rs.r, inc); by != nil {
		e.suppress(inc, by, t)
		return
	}
	inc.State = event.StateOpen
	e.publishOpened(inc, t)
}
