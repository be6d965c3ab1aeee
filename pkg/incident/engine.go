package incident

import (
	"fmt"
	"sort"
	"time"

	"github.com/heraldhq/herald/pkg/event"
)

// Event types the engine reads for itself rather than through rules.
const (
	TypeClockTick   = "clock_tick"
	TypeRulesLoaded = "incident_rules_loaded"
)

// Source is the ce-source of the incident transitions.
const Source = "herald.incident"

// Record is one event of the log as the engine reads it.
type Record struct {
	Seq       uint64
	Time      int64 // event time, Unix nanoseconds
	Type      string
	ID        string
	RequestID string
	Data      []byte // the event's JSON data, validated against its schema
}

// Options configure an engine.
type Options struct {
	// Catalog validates the rules that arrive in the log.
	Catalog *event.Catalog
	// Rules, when set, are used for the whole fold and rule sets recorded
	// in the log are ignored: back-testing a new rule set.
	Rules *Rules
	// KeepResolved bounds the resolved incidents kept for the API (default 10000).
	KeepResolved int
}

// Engine folds records into incidents. It is not safe for concurrent use.
type Engine struct {
	opts  Options
	rules *Rules
	fixed bool
	// now is the projection's clock: the latest event time applied. An
	// event stamped earlier than now (a late producer) counts at now.
	now int64
	seq uint64

	states  map[string]*ruleState // by rule name
	byIndex []*ruleState          // by rule index in rules
	nextGID uint64
	heap    deadlines

	incidents map[string]*Incident
	open      map[string]map[string]*Incident // open or suppressed, by rule then id
	resolved  []string                        // resolution order, for retention

	out      []*event.Event
	cause    Record // the record being applied (Data not retained)
	vals     []value
	keyBuf   []byte
	rulesErr error
	invalid  int
}

type ruleState struct {
	r      *rule
	groups map[string]*group
}

const nSamples = 5

// group is the state of one rule on one group key.
type group struct {
	id   uint64
	rs   *ruleState
	key  string
	vals []string
	dead bool

	w       window
	lastSeq uint64
	samples [nSamples]string
	ns      int // samples written (ring position = ns % nSamples)

	// absence
	lastOK, activeSince int64
	lastOKSeq, actSeq   uint64
	activity            int
	// match
	hits     int
	firstHit uint64

	sev   []sevState
	level int // rank of the incident's severity, 0 without incident
	inc   *Incident

	due, heapDue int64
}

type sevState struct {
	Since    int64 `json:"since,omitempty"`    // condition holding since
	Clear    int64 `json:"clear,omitempty"`    // condition clear since (while active)
	Active   bool  `json:"active,omitempty"`   // level reached
	ActiveAt int64 `json:"activeAt,omitempty"` // when it was reached
}

// NewEngine returns an empty projection. Without opts.Rules it has no rules
// until it applies an incident_rules_loaded record.
func NewEngine(opts Options) *Engine {
	if opts.KeepResolved <= 0 {
		opts.KeepResolved = 10000
	}
	e := &Engine{opts: opts, states: map[string]*ruleState{}, incidents: map[string]*Incident{}, open: map[string]map[string]*Incident{}}
	if opts.Rules != nil {
		e.fixed = true
		e.swapRules(opts.Rules)
	}
	return e
}

// Rules returns the rules in force (nil before any).
func (e *Engine) Rules() *Rules { return e.rules }

// Seq is the last applied stream sequence.
func (e *Engine) Seq() uint64 { return e.seq }

// Now is the projection's clock.
func (e *Engine) Now() time.Time {
	if e.now == 0 {
		return time.Time{}
	}
	return time.Unix(0, e.now).UTC()
}

// RulesError is the error of the last rule set in the log that did not
// compile (it was ignored: the previous rules stayed in force).
func (e *Engine) RulesError() error { return e.rulesErr }

// Drain returns the transitions to publish since the last call, in order.
func (e *Engine) Drain() []*event.Event {
	out := e.out
	e.out = nil
	return out
}

// Apply folds one record. Records must come in stream order.
func (e *Engine) Apply(rec *Record) {
	t := max(rec.Time, e.now)
	e.cause = Record{Seq: rec.Seq, ID: rec.ID, Time: t}
	if rec.Type == TypeClockTick || rec.Type == "" {
		e.advance(t)
		e.seq = rec.Seq
		return
	}
	// Deadlines strictly before the event first: an event at the very
	// instant a condition would start (a success exactly an hour after the
	// last) is seen before it, so no zero-length incident opens.
	e.advance(t - 1)
	e.now = t
	e.seq = rec.Seq
	switch rec.Type {
	case TypeRulesLoaded:
		if !e.fixed && e.valid(rec) {
			e.loadRules(rec.Data)
		}
		return
	}
	if e.rules == nil {
		return
	}
	ti := e.rules.byType[rec.Type]
	if ti == nil {
		return
	}
	if cap(e.vals) < len(ti.fields) {
		e.vals = make([]value, len(ti.fields))
	}
	vals := e.vals[:len(ti.fields)]
	extract(rec.Data, ti.fields, vals)
	if !fieldsValid(ti, vals) {
		e.invalid++
		return
	}
	succeeded := -1 // absence rule whose success this event was
	for i := range ti.uses {
		u := &ti.uses[i]
		if !all(u.where, vals) {
			continue
		}
		r := u.r
		if u.role == roleActivity && succeeded == r.index {
			continue
		}
		rs := e.byIndex[r.index]
		g := e.lookup(rs, u, vals, u.role != roleClear)
		if g == nil {
			continue
		}
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
				succeeded = r.index
				g.lastOK, g.lastOKSeq = t, rec.Seq
				g.activeSince, g.activity, g.ns = 0, 0, 0
			} else {
				if g.activeSince == 0 {
					g.activeSince, g.actSeq = t, rec.Seq
				}
				g.activity++
				g.lastSeq = rec.Seq
				g.sample(rec.RequestID)
			}
		case KindMatch:
			if u.role == roleClear {
				g.hits, g.ns = 0, 0
			} else {
				if g.hits == 0 {
					g.firstHit = rec.Seq
				}
				g.hits++
				g.lastSeq = rec.Seq
				g.sample(rec.RequestID)
			}
		}
		e.eval(g, t)
	}
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

// valid checks a record's data against its whole schema (when the engine
// has the catalog): for the rare records the engine reads whole.
func (e *Engine) valid(rec *Record) bool {
	if e.opts.Catalog == nil {
		return true
	}
	if err := e.opts.Catalog.Validate(event.Type(rec.Type), rec.Data); err != nil {
		e.invalid++
		return false
	}
	return true
}

// Invalid counts the records skipped because the fields the rules read (or
// a rule set) failed validation.
func (e *Engine) Invalid() int { return e.invalid }

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

// AdvanceTo moves the clock to t (Unix nanoseconds) without an event,
// handling every deadline up to it: the end of a back-test range.
func (e *Engine) AdvanceTo(t int64) {
	if t <= e.now {
		return
	}
	e.cause = Record{Seq: e.seq, Time: t}
	e.advance(t)
}

// advance handles every deadline up to t, in (time, group) order.
func (e *Engine) advance(t int64) {
	for len(e.heap) > 0 && e.heap[0].due <= t {
		en := e.heap.pop()
		g := en.g
		if g.dead || en.due != g.heapDue {
			continue
		}
		g.heapDue = 0
		if g.due == 0 {
			continue
		}
		if g.due > en.due {
			e.push(g)
			continue
		}
		e.now = g.due
		e.eval(g, g.due)
	}
	e.now = max(e.now, t)
}

// NextDeadline is the earliest time at which the projection would change
// without a new event (0: none): when the live clock passes it, a tick is due.
func (e *Engine) NextDeadline() int64 {
	for len(e.heap) > 0 {
		en := e.heap[0]
		g := en.g
		switch {
		case g.dead || en.due != g.heapDue || g.due == 0:
			e.heap.pop()
			if !g.dead && en.due == g.heapDue {
				g.heapDue = 0
			}
		case g.due > en.due:
			e.heap.pop()
			g.heapDue = 0
			e.push(g)
		default:
			return en.due
		}
	}
	return 0
}

func (e *Engine) push(g *group) {
	if g.due == 0 || g.heapDue != 0 && g.heapDue <= g.due {
		return
	}
	g.heapDue = g.due
	e.heap.push(deadline{due: g.due, gid: g.id, g: g})
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

// eval re-evaluates g at t: severities, the incident's transitions, the
// next deadline.
func (e *Engine) eval(g *group, t int64) {
	r := g.rs.r
	if r.buckets > 0 {
		g.w.roll(floorDiv(t, r.step))
	}
	var upAt, downAt int64
	for i := range r.sev {
		s, st := &r.sev[i], &g.sev[i]
		holds, since := g.cond(r, s, t)
		if holds {
			if st.Since == 0 {
				st.Since = since
			}
			st.Clear = 0
		} else {
			st.Since = 0
			if st.Active && st.Clear == 0 {
				st.Clear = t
			}
		}
		if !st.Active && st.Since != 0 && st.Since+s.forDur <= t {
			st.Active, st.ActiveAt = true, st.Since+s.forDur
			if upAt == 0 || st.ActiveAt < upAt {
				upAt = st.ActiveAt
			}
		}
		if st.Active && st.Clear != 0 && st.Clear+r.resolveFor <= t {
			st.Active, st.ActiveAt = false, 0
			downAt = max(downAt, st.Clear)
		}
	}
	level := 0
	for i := range r.sev {
		if g.sev[i].Active {
			level = r.sev[i].rank
			break
		}
	}
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
		onset := upAt
		for i := range r.sev {
			if a := g.sev[i].ActiveAt; g.sev[i].Active && a != 0 && (onset == 0 || a < onset) {
				onset = a
			}
		}
		e.openIncident(g, level, orNow(onset), t)
	case g.inc != nil && level > 0:
		at := downAt
		if level > g.level {
			at = g.sev[r.rankIndex(level)].ActiveAt
		}
		e.escalate(g, level, orNow(at), t)
	case g.inc != nil:
		e.resolve(g.inc, orNow(downAt), t, g)
	}
	e.schedule(g, t)
}

func (r *rule) rankIndex(rank int) int {
	for i := range r.sev {
		if r.sev[i].rank == rank {
			return i
		}
	}
	return 0
}

// schedule computes g's next deadline, or retires an idle group.
func (e *Engine) schedule(g *group, t int64) {
	r := g.rs.r
	var due int64
	cand := func(x int64) {
		if x > t && (due == 0 || x < due) {
			due = x
		}
	}
	busy := g.inc != nil
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
	e.push(g)
}

func (e *Engine) retire(g *group) {
	g.dead = true
	delete(g.rs.groups, g.key)
}

func (e *Engine) evidence(g *group) event.Evidence {
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

func (e *Engine) labels(g *group) Labels {
	l := make(Labels, len(g.vals))
	for i, f := range g.rs.r.cfg.GroupBy {
		l[i] = Label{f, g.vals[i]}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	return l
}

func ts(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func (e *Engine) openIncident(g *group, level int, onset, t int64) {
	r := g.rs.r
	id := ""
	for n := 0; ; n++ {
		id = incidentID(r.cfg.Name, g.vals, r.cfg.GroupBy, onset, n)
		if _, taken := e.incidents[id]; !taken {
			break
		}
	}
	ev := e.evidence(g)
	lv := rankLevel[level]
	inc := &Incident{
		ID: id, Rule: r.cfg.Name, Kind: r.kind, Group: e.labels(g), State: event.StateOpen,
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
	e.emit(inc, tr, event.IncidentOpened{
		IncidentID: inc.ID, Rule: inc.Rule, Kind: inc.Kind, Severity: inc.Severity, Group: inc.Group.Map(),
		OpenedAt: inc.OpenedAt, Summary: inc.Summary, Runbook: inc.Runbook, Evidence: inc.Evidence, Ordinal: tr.PublishedOrdinal,
	})
}

func (e *Engine) suppress(inc, by *Incident, t int64) {
	inc.State, inc.SuppressedBy = event.StateSuppressed, by.ID
	by.Suppressions = append(by.Suppressions, Suppression{IncidentID: inc.ID, Rule: inc.Rule, Group: inc.Group, Severity: inc.Severity, At: ts(t)})
	tr := e.record(inc, "incident_suppressed", ts(t), t, "", true)
	e.emit(inc, tr, event.IncidentSuppressed{
		IncidentID: inc.ID, Rule: inc.Rule, Kind: inc.Kind, Severity: inc.Severity, Group: inc.Group.Map(),
		OpenedAt: inc.OpenedAt, Summary: inc.Summary, SuppressedBy: by.ID, SuppressedByRule: by.Rule,
		At: ts(t), Evidence: inc.Evidence, Ordinal: tr.PublishedOrdinal,
	})
}

func (e *Engine) setOpen(inc *Incident) {
	m := e.open[inc.Rule]
	if m == nil {
		m = map[string]*Incident{}
		e.open[inc.Rule] = m
	}
	m[inc.ID] = inc
}

// inhibitor returns the open incident (smallest id) that suppresses inc.
func (e *Engine) inhibitor(r *rule, inc *Incident) *Incident {
	var best *Incident
	for _, in := range r.inhibitors {
		for _, o := range e.open[in.rule] {
			if o.State != event.StateOpen || o == inc {
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

func (e *Engine) escalate(g *group, level int, at, t int64) {
	inc := g.inc
	from, to := inc.Severity, rankLevel[level]
	inc.Severity = to
	if level > levelRank[inc.PeakSeverity] {
		inc.PeakSeverity = to
	}
	g.level = level
	inc.Evidence = e.evidence(g)
	pub := inc.State == event.StateOpen
	tr := e.record(inc, "incident_escalated", ts(at), t, from, pub)
	if pub {
		e.emit(inc, tr, event.IncidentEscalated{
			IncidentID: inc.ID, Rule: inc.Rule, Group: inc.Group.Map(), From: from, To: to, At: ts(at),
			Evidence: inc.Evidence, Ordinal: tr.PublishedOrdinal,
		})
	}
}

// resolve closes inc at `at` (decided at t) and releases what it suppressed.
func (e *Engine) resolve(inc *Incident, at, t int64, g *group) {
	if g != nil {
		inc.Evidence = e.evidence(g)
		g.inc, g.level = nil, 0
	}
	rat := ts(at)
	wasOpen := inc.State == event.StateOpen
	inc.State, inc.ResolvedAt = event.StateResolved, &rat
	delete(e.open[inc.Rule], inc.ID)
	tr := e.record(inc, "incident_resolved", rat, t, "", wasOpen)
	if wasOpen {
		var ids []string
		for _, s := range inc.Suppressions {
			ids = append(ids, s.IncidentID)
		}
		e.emit(inc, tr, event.IncidentResolved{
			IncidentID: inc.ID, Rule: inc.Rule, Group: inc.Group.Map(), OpenedAt: inc.OpenedAt, ResolvedAt: rat,
			PeakSeverity: inc.PeakSeverity, Evidence: inc.Evidence, Ordinal: tr.PublishedOrdinal, Suppressed: ids,
		})
		for _, s := range inc.Suppressions {
			if other := e.incidents[s.IncidentID]; other != nil && other.State == event.StateSuppressed && other.SuppressedBy == inc.ID {
				e.release(other, t)
			}
		}
	}
	e.resolved = append(e.resolved, inc.ID)
	for len(e.resolved) > e.opts.KeepResolved {
		delete(e.incidents, e.resolved[0])
		e.resolved = e.resolved[1:]
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

func (e *Engine) emit(inc *Incident, tr *Transition, data event.Data) {
	ev := event.New(Source, data, event.WithID(tr.EventID), event.WithTime(tr.DecidedAt), event.WithSubject(tr.Subject))
	ev.CausationID = e.cause.ID
	e.out = append(e.out, ev)
}

// Incidents returns the incidents the projection holds, newest onset first.
func (e *Engine) Incidents() []*Incident {
	out := make([]*Incident, 0, len(e.incidents))
	for _, inc := range e.incidents {
		out = append(out, inc)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].OpenedAt.Equal(out[j].OpenedAt) {
			return out[i].OpenedAt.After(out[j].OpenedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Incident returns one incident by id.
func (e *Engine) Incident(id string) (*Incident, bool) {
	inc, ok := e.incidents[id]
	return inc, ok
}

// Groups is the number of groups the projection tracks.
func (e *Engine) Groups() int {
	n := 0
	for _, rs := range e.states {
		n += len(rs.groups)
	}
	return n
}

// deadline is one entry of the deadline heap, ordered by (due, group id)
// so that simultaneous deadlines are handled in the same order every time.
type deadline struct {
	due int64
	gid uint64
	g   *group
}

type deadlines []deadline

func (h deadlines) less(i, j int) bool {
	return h[i].due < h[j].due || h[i].due == h[j].due && h[i].gid < h[j].gid
}

func (h *deadlines) push(d deadline) {
	*h = append(*h, d)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *deadlines) pop() deadline {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = deadline{}
	s = s[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && s.less(l, m) {
			m = l
		}
		if r < n && s.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}
