package incident

import "github.com/heraldhq/herald/pkg/event"

// ruleState is one rule in force and its groups.
type ruleState struct {
	r      *rule
	groups map[string]*group
}

// nSamples is how many request ids a group keeps as evidence.
const nSamples = 5

// group is the state of one rule on one group key: what the fold counted
// (by rule kind), the severities evaluated from it, its incident, and its
// deadline.
type group struct {
	id   uint64 // creation order: ties between simultaneous deadlines
	rs   *ruleState
	key  string
	vals []string // the group-by values, in the rule's groupBy order
	dead bool     // retired, or its rule removed

	w       window // ratio and count
	lastSeq uint64 // the last event counted
	samples [nSamples]string
	ns      int // samples written (ring position = ns % nSamples)

	// absence
	lastOK, activeSince int64
	lastOKSeq, actSeq   uint64
	activity            int
	// match
	hits          int
	firstHit      uint64
	class, reason string // the latest hit's classification and its reason

	sev   []sevState // one per severity of the rule, in its order
	level int        // rank of the level in force, 0: none (no incident, or a quiet flapping one)
	inc   *Incident

	// flap control (flap.go): the resolutions within the window; while the
	// incident is flapping and its condition clear, since when and the
	// evidence then.
	cycles  []int64
	quiet   int64
	quietEv *event.Evidence

	// due is the group's next deadline (0: none); heapDue the deadline of
	// its live entry in the engine's deadlines (0: none), see deadlines.
	due, heapDue int64
}

// sevState is one severity of a group: its condition and level.
type sevState struct {
	Since    int64 `json:"since,omitempty"`    // condition holding since
	Clear    int64 `json:"clear,omitempty"`    // condition clear since (while active)
	Active   bool  `json:"active,omitempty"`   // level reached
	ActiveAt int64 `json:"activeAt,omitempty"` // when it was reached
	// ClearEv is the evidence when the condition cleared (while Clear is set).
	ClearEv *event.Evidence `json:"clearEvidence,omitempty"`
}

// fold applies an event of a type the rules read to the group of each rule
// that uses it, and re-evaluates those groups.
func (e *Engine) fold(ti *typeInfo, rec *Record, t int64) {
	if cap(e.vals) < len(ti.fields) {
		e.vals = make([]value, len(ti.fields))
	}
	vals := e.vals[:len(ti.fields)]
	extract(rec.Data, ti.fields, vals)
	if !fieldsValid(ti, vals) {
		e.invalid++
		return
	}
	succeeded := -1 // absence rule whose success this event was (not also its activity)
	for i := range ti.uses {
		u := &ti.uses[i]
		if !all(u.where, vals) || u.role == roleActivity && succeeded == u.r.index {
			continue
		}
		g := e.lookup(e.byIndex[u.r.index], u, vals, u.role != roleClear)
		if g == nil {
			continue
		}
		if g.observe(u, vals, rec, t) {
			succeeded = u.r.index
		}
		e.eval(g, t)
	}
}

// observe counts one event in g, as its rule's kind and the use's role
// say: in the window (ratio, count), as a success or an activity (absence),
// as a hit or a clear (match). It reports an absence rule's success.
func (g *group) observe(u *use, vals []value, rec *Record, t int64) (succeeded bool) {
	r := u.r
	switch r.kind {
	case KindRatio:
		failed := all(u.failed, vals)
		g.w.add(floorDiv(t, r.step), failed, rec.Seq)
		g.lastSeq = rec.Seq
		if failed {
			g.sample(rec.RequestID)
		}
	case KindCount:
		g.w.add(floorDiv(t, r.step), true, rec.Seq)
		g.lastSeq = rec.Seq
		g.sample(rec.RequestID)
	case KindAbsence:
		if u.role == roleMatch {
			g.lastOK, g.lastOKSeq = t, rec.Seq
			g.activeSince, g.activity, g.ns = 0, 0, 0
			return true
		}
		if g.activeSince == 0 {
			g.activeSince, g.actSeq = t, rec.Seq
		}
		g.activity++
		g.lastSeq = rec.Seq
		g.sample(rec.RequestID)
	case KindMatch:
		if u.role == roleClear {
			g.hits, g.ns = 0, 0
			return false
		}
		if g.hits == 0 {
			g.firstHit = rec.Seq
		}
		if u.class >= 0 {
			g.class, g.reason = vals[u.class].text(), vals[u.reason].text()
		}
		g.hits++
		g.lastSeq = rec.Seq
		g.sample(rec.RequestID)
	}
	return false
}

// fieldsValid checks the fields the rules read against the schema: present
// if required, of the declared JSON type. An event that fails is, in every
// fold, only a tick of the clock. The rest of the event is not validated
// again: EVENTS is written through Herald's validating publisher, and full
// validation (~1.5 µs an event) would cost more than the fold itself.
func fieldsValid(ti *typeInfo, vals []value) bool {
	for i := range vals {
		k := vals[i].kind
		switch {
		case k == valMissing:
			if ti.required[i] {
				return false
			}
		case ti.kinds[i] == valMissing:
		case ti.kinds[i] == valTrue:
			if k != valTrue && k != valFalse {
				return false
			}
		case k != ti.kinds[i]:
			return false
		}
	}
	return true
}

func all(ps []*pred, vals []value) bool {
	for _, p := range ps {
		if !p.eval(&vals[p.slot]) {
			return false
		}
	}
	return true
}

func (g *group) sample(id string) {
	if id == "" {
		return
	}
	g.samples[g.ns%nSamples] = id
	g.ns++
}

// lookup finds (or creates) the group of u's rule for the event's values.
func (e *Engine) lookup(rs *ruleState, u *use, vals []value, create bool) *group {
	b := e.keyBuf[:0]
	for _, s := range u.group {
		b = vals[s].appendText(b)
		b = append(b, 0x1f)
	}
	e.keyBuf = b
	if g, ok := rs.groups[string(b)]; ok {
		return g
	}
	if !create {
		return nil
	}
	g := e.newGroup(rs, string(b))
	for _, s := range u.group {
		g.vals = append(g.vals, vals[s].text())
	}
	return g
}

func (e *Engine) newGroup(rs *ruleState, key string) *group {
	e.nextGID++
	g := &group{id: e.nextGID, rs: rs, key: key, sev: make([]sevState, len(rs.r.sev))}
	if rs.r.buckets > 0 {
		g.w.init(rs.r.buckets)
	}
	rs.groups[key] = g
	return g
}
