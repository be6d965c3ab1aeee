package incident

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/heraldhq/herald/pkg/event"
)

// loadRules applies a rule set recorded in the log. One that does not
// compile (a catalog change since it was written) is ignored, and kept as
// RulesError, so that the fold goes on deterministically.
func (e *Engine) loadRules(data []byte) {
	var rl event.IncidentRulesLoaded
	if err := json.Unmarshal(data, &rl); err != nil {
		e.rulesErr = fmt.Errorf("incident_rules_loaded at seq %d: %w", e.seq, err)
		return
	}
	if e.rules != nil && e.rules.Fingerprint == rl.Fingerprint {
		return
	}
	rs, err := ParseRules(rl.Source, []byte(rl.Document), e.opts.Catalog)
	if err != nil {
		e.rulesErr = fmt.Errorf("incident_rules_loaded at seq %d: %w", e.seq, err)
		return
	}
	e.rulesErr = nil
	e.swapRules(rs)
}

// swapRules puts a new rule set in force without losing state: a rule whose
// definition is unchanged keeps everything; a changed rule keeps its groups,
// open incidents and hysteresis (and its window counts if the window is the
// same), re-evaluated under the new definition; a removed rule's incidents
// are resolved now. A rule whose kind or groupBy changed is a new rule.
func (e *Engine) swapRules(nr *Rules) {
	old := e.states
	e.states = make(map[string]*ruleState, len(nr.rules))
	e.byIndex = make([]*ruleState, len(nr.rules))
	var changed []*ruleState
	for _, r := range nr.rules {
		rs := old[r.cfg.Name]
		switch {
		case rs == nil:
			rs = &ruleState{r: r, groups: map[string]*group{}}
		case rs.r.fingerprint == r.fingerprint:
			rs.r = r
			delete(old, r.cfg.Name)
		case rs.r.kind == r.kind && slices.Equal(rs.r.cfg.GroupBy, r.cfg.GroupBy):
			migrate(rs, r)
			changed = append(changed, rs)
			delete(old, r.cfg.Name)
		default:
			rs = &ruleState{r: r, groups: map[string]*group{}}
		}
		e.states[r.cfg.Name] = rs
		e.byIndex[r.index] = rs
	}
	e.rules = nr
	// What is left of old was removed (or replaced): resolve its incidents.
	names := make([]string, 0, len(old))
	for n := range old {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, g := range sortedGroups(old[n]) {
			if g.inc != nil {
				e.resolve(g.inc, e.now, e.now, g, nil)
			}
			g.dead = true
		}
	}
	for _, rs := range changed {
		for _, g := range sortedGroups(rs) {
			e.eval(g, e.now)
		}
	}
}

func sortedGroups(rs *ruleState) []*group {
	gs := make([]*group, 0, len(rs.groups))
	for _, g := range rs.groups {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].id < gs[j].id })
	return gs
}

// migrate adapts a rule's groups to its new definition.
func migrate(rs *ruleState, r *rule) {
	prev := rs.r
	rs.r = r
	for _, g := range rs.groups {
		if r.buckets != prev.buckets || r.step != prev.step {
			g.w = window{}
			if r.buckets > 0 {
				g.w.init(r.buckets)
			}
		}
		sev := make([]sevState, len(r.sev))
		for i, s := range r.sev {
			for j, p := range prev.sev {
				if p.rank == s.rank {
					sev[i] = g.sev[j]
				}
			}
		}
		g.sev = sev
	}
}
