package incident

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/heraldhq/herald/pkg/event"
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
	// Class and Reason: the latest hit's classification (match rules).
	Class  string `json:"class,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Cycles, Quiet and QuietEv are the flap control's (flap.go).
	Cycles  []int64         `json:"cycles,omitempty"`
	Quiet   int64           `json:"quiet,omitempty"`
	QuietEv *event.Evidence `json:"quietEvidence,omitempty"`
}

// Snapshot encodes the whole state of the projection: with the sequence it
// covers, it is a checkpoint to resume from. Pending transitions are not in
// it: drain and publish them first.
func (e *Engine) Snapshot() ([]byte, error) {
	var b bytes.Buffer
	if err := e.WriteSnapshot(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// snapHeader is a snapshot without its groups and incidents, which
// WriteSnapshot streams one by one.
type snapHeader struct {
	Version     int      `json:"version"`
	Seq         uint64   `json:"seq"`
	Now         int64    `json:"now"`
	NextGID     uint64   `json:"nextGid"`
	Rules       string   `json:"rules,omitempty"`
	RulesSource string   `json:"rulesSource,omitempty"`
	RulesErr    string   `json:"rulesErr,omitempty"`
	Resolved    []string `json:"resolved"`
}

// WriteSnapshot streams the snapshot to w, one group and one incident at a
// time, so that a large state is never held twice in memory as JSON.
func (e *Engine) WriteSnapshot(w io.Writer) error {
	h := snapHeader{Version: snapshotVersion, Seq: e.seq, Now: e.now, NextGID: e.nextGID, Resolved: e.resolved}
	if e.rules != nil && !e.fixed {
		h.Rules, h.RulesSource = e.rules.Document, e.rules.Source
	}
	if e.rulesErr != nil {
		h.RulesErr = e.rulesErr.Error()
	}
	head, err := json.Marshal(h)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(head[:len(head)-1])
	bw.WriteString(`,"groups":[`)
	names := make([]string, 0, len(e.states))
	for n := range e.states {
		names = append(names, n)
	}
	sort.Strings(names)
	first := true
	// One encoder (its buffers are pooled) and one buckets slice for every
	// item: a checkpoint of a large state must not leave its size in
	// garbage behind, which the GC would let the heap grow into.
	enc := json.NewEncoder(bw)
	var buckets [][3]int64
	item := func(v any) error {
		if !first {
			bw.WriteByte(',')
		}
		first = false
		return enc.Encode(v)
	}
	for _, n := range names {
		for _, g := range sortedGroups(e.states[n]) {
			var gs groupSnap
			gs, buckets = g.snap(buckets[:0])
			if err := item(gs); err != nil {
				return err
			}
		}
	}
	bw.WriteString(`],"incidents":[`)
	ids := make([]string, 0, len(e.incidents))
	for id := range e.incidents {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	first = true
	for _, id := range ids {
		if err := item(e.incidents[id]); err != nil {
			return err
		}
	}
	bw.WriteString("]}")
	return bw.Flush()
}

// snap is g as the snapshot keeps it; its buckets are appended to buckets
// (reused from group to group), which it returns.
func (g *group) snap(buckets [][3]int64) (groupSnap, [][3]int64) {
	gs := groupSnap{
		ID: g.id, Rule: g.rs.r.cfg.Name, Vals: g.vals, Head: g.w.head, LastSeq: g.lastSeq, NS: g.ns,
		LastOK: g.lastOK, LastOKSeq: g.lastOKSeq, ActiveSince: g.activeSince, ActSeq: g.actSeq,
		Activity: g.activity, Hits: g.hits, FirstHit: g.firstHit, Sev: g.sev, Level: g.level, Due: g.due,
		Class: g.class, Reason: g.reason, Cycles: g.cycles, Quiet: g.quiet, QuietEv: g.quietEv,
	}
	if g.ns > 0 {
		gs.Samples = g.samples[:]
	}
	for _, b := range g.w.b {
		buckets = append(buckets, [3]int64{int64(b.failed), int64(b.total), int64(b.firstSeq)})
	}
	if len(buckets) > 0 {
		gs.Buckets = buckets
	}
	if g.inc != nil {
		gs.Incident = g.inc.ID
	}
	return gs, buckets
}

// ReadSnapshot restores an engine from a snapshot stream.
func ReadSnapshot(r io.Reader, opts Options) (*Engine, error) {
	var s snapshot
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return nil, fmt.Errorf("incident snapshot: %w", err)
	}
	return restore(&s, opts)
}

func restore(s *snapshot, opts Options) (*Engine, error) {
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
		if inc.State != event.StateResolved {
			e.setOpen(inc)
		}
	}
	for i := range s.Groups {
		g, err := e.restoreGroup(&s.Groups[i])
		if err != nil {
			return nil, err
		}
		g.rs.groups[g.key] = g
		e.timers.set(g)
	}
	if fixed != nil {
		e.swapRules(fixed)
	}
	return e, nil
}

// restoreGroup rebuilds a group of the snapshot, once its rule and the
// incidents are restored.
func (e *Engine) restoreGroup(gs *groupSnap) (*group, error) {
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
		class: gs.Class, reason: gs.Reason, cycles: gs.Cycles, quiet: gs.Quiet, quietEv: gs.QuietEv,
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
	return g, nil
}
