package incident

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// snapshotVersion changes when the snapshot's shape does; an older snapshot
// is then ignored and the projection rebuilt from the log.
const snapshotVersion = 1

type snapshot struct {
	Version     int         `json:"version"`
	Seq         uint64      `json:"seq"`
	Now         int64       `json:"now"`
	NextGID     uint64      `json:"nextGid"`
	Rules       string      `json:"rules,omitempty"`
	RulesSource string      `json:"rulesSource,omitempty"`
	RulesErr    string      `json:"rulesErr,omitempty"`
	Groups      []groupSnap `json:"groups"`
	Incidents   []*Incident `json:"incidents"`
	Resolved    []string    `json:"resolved"`
}

type groupSnap struct {
	ID          uint64     `json:"id"`
	Rule        string     `json:"rule"`
	Vals        []string   `json:"vals"`
	Buckets     [][3]int64 `json:"buckets,omitempty"` // failed, total, firstSeq
	Head        int64      `json:"head,omitempty"`
	LastSeq     uint64     `json:"lastSeq,omitempty"`
	Samples     []string   `json:"samples,omitempty"`
	NS          int        `json:"ns,omitempty"`
	LastOK      int64      `json:"lastOk,omitempty"`
	LastOKSeq   uint64     `json:"lastOkSeq,omitempty"`
	ActiveSince int64      `json:"activeSince,omitempty"`
	ActSeq      uint64     `json:"actSeq,omitempty"`
	Activity    int        `json:"activity,omitempty"`
	Hits        int        `json:"hits,omitempty"`
	FirstHit    uint64     `json:"firstHit,omitempty"`
	Sev         []sevState `json:"sev"`
	Level       int        `json:"level,omitempty"`
	Incident    string     `json:"incident,omitempty"`
	Due         int64      `json:"due,omitempty"`
}

// Snapshot encodes the whole state of the projection: with the sequence it
// covers, it is a checkpoint to resume from. Pending transitions are not in
// it: drain and publish them first.
func (e *Engine) Snapshot() ([]byte, error) {
	s := snapshot{Version: snapshotVersion, Seq: e.seq, Now: e.now, NextGID: e.nextGID, Resolved: e.resolved}
	if e.rules != nil && !e.fixed {
		s.Rules, s.RulesSource = e.rules.Document, e.rules.Source
	}
	if e.rulesErr != nil {
		s.RulesErr = e.rulesErr.Error()
	}
	names := make([]string, 0, len(e.states))
	for n := range e.states {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, g := range sortedGroups(e.states[n]) {
			gs := groupSnap{
				ID: g.id, Rule: n, Vals: g.vals, Head: g.w.head, LastSeq: g.lastSeq, NS: g.ns,
				LastOK: g.lastOK, LastOKSeq: g.lastOKSeq, ActiveSince: g.activeSince, ActSeq: g.actSeq,
				Activity: g.activity, Hits: g.hits, FirstHit: g.firstHit, Sev: g.sev, Level: g.level, Due: g.due,
			}
			if g.ns > 0 {
				gs.Samples = g.samples[:]
			}
			for _, b := range g.w.b {
				gs.Buckets = append(gs.Buckets, [3]int64{int64(b.failed), int64(b.total), int64(b.firstSeq)})
			}
			if g.inc != nil {
				gs.Incident = g.inc.ID
			}
			s.Groups = append(s.Groups, gs)
		}
	}
	for _, inc := range e.incidents {
		s.Incidents = append(s.Incidents, inc)
	}
	sort.Slice(s.Incidents, func(i, j int) bool { return s.Incidents[i].ID < s.Incidents[j].ID })
	return json.Marshal(s)
}

// Restore builds an engine from a snapshot. With opts.Rules set the
// snapshot's rules are replaced by them (as a reload would).
func Restore(b []byte, opts Options) (*Engine, error) {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("incident snapshot: %w", err)
	}
	if s.Version != snapshotVersion {
		return nil, fmt.Errorf("incident snapshot: version %d, want %d", s.Version, snapshotVersion)
	}
	fixed := opts.Rules
	opts.Rules = nil
	e := NewEngine(opts)
	e.seq, e.now, e.nextGID, e.resolved = s.Seq, s.Now, s.NextGID, s.Resolved
	if s.RulesErr != "" {
		e.rulesErr = fmt.Errorf("%s", s.RulesErr)
	}
	if s.Rules != "" {
		rs, err := ParseRules(s.RulesSource, []byte(s.Rules), opts.Catalog)
		if err != nil {
			return nil, fmt.Errorf("incident snapshot: rules: %w", err)
		}
		e.swapRules(rs)
	}
	for _, inc := range s.Incidents {
		e.incidents[inc.ID] = inc
		if inc.State != StateResolved {
			e.setOpen(inc)
		}
	}
	for _, gs := range s.Groups {
		rs := e.states[gs.Rule]
		if rs == nil {
			return nil, fmt.Errorf("incident snapshot: group of unknown rule %q", gs.Rule)
		}
		var key strings.Builder
		for _, v := range gs.Vals {
			key.WriteString(v)
			key.WriteByte(0x1f)
		}
		g := &group{
			id: gs.ID, rs: rs, key: key.String(), vals: gs.Vals, lastSeq: gs.LastSeq, ns: gs.NS,
			lastOK: gs.LastOK, lastOKSeq: gs.LastOKSeq, activeSince: gs.ActiveSince, actSeq: gs.ActSeq,
			activity: gs.Activity, hits: gs.Hits, firstHit: gs.FirstHit, sev: gs.Sev, level: gs.Level, due: gs.Due,
		}
		if len(g.sev) != len(rs.r.sev) {
			return nil, fmt.Errorf("incident snapshot: group %d of %s has %d severities, rule has %d", g.id, gs.Rule, len(g.sev), len(rs.r.sev))
		}
		copy(g.samples[:], gs.Samples)
		if len(gs.Buckets) > 0 {
			g.w.b = make([]bucket, len(gs.Buckets))
			for i, b := range gs.Buckets {
				g.w.b[i] = bucket{failed: uint32(b[0]), total: uint32(b[1]), firstSeq: uint64(b[2])}
				g.w.failed += int(b[0])
				g.w.total += int(b[1])
			}
			g.w.head = gs.Head
		}
		if gs.Incident != "" {
			if g.inc = e.incidents[gs.Incident]; g.inc == nil {
				return nil, fmt.Errorf("incident snapshot: group %d refers to unknown incident %s", g.id, gs.Incident)
			}
		}
		rs.groups[g.key] = g
		e.push(g)
	}
	if fixed != nil {
		e.swapRules(fixed)
	}
	return e, nil
}
