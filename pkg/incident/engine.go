package incident

import (
	"time"

	"github.com/heraldhq/herald/pkg/event"
)

// The engine is one type, Engine, in files along its seams:
//
//	engine.go       the Engine, its options and read-only accessors, Apply
//	fold.go         an event applied to the groups it concerns (windows, hits, activity)
//	evaluate.go     per group: which severities hold, which levels are reached or left, the evidence
//	transitions.go  the incident records: open, escalate / de-escalate, resolve; the events they emit
//	flap.go         flap control: an incident held open, flapping, while its condition comes and goes
//	inhibit.go      suppression by an open incident of an inhibiting rule, and release
//	schedule.go     event time: a group's next deadline, the clock's advance over deadlines
//	deadlines.go    the deadline queue (a heap ordered by time, then group)
//	reload.go       a new rule set put in force without losing state
//	snapshot.go     the whole state encoded and restored
//
// A record flows Apply → advance (deadlines before it) → fold → eval, and
// eval is evaluate → transition → schedule, at an event and at a deadline
// alike.

// Event types the engine reads for itself rather than through rules.
const (
	TypeClockTick   = "clock_tick"
	TypeRulesLoaded = "incident_rules_loaded"
)

// Source is the ce-source of the incident transitions.
const Source = "herald/incident"

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

	// The groups: the state of each rule on each group key.
	states  map[string]*ruleState // by rule name
	byIndex []*ruleState          // by rule index in rules
	nextGID uint64
	timers  deadlines

	// The incident records.
	incidents map[string]*Incident
	open      map[string]map[string]*Incident // open or suppressed, by rule then id
	resolved  []string                        // resolution order, for retention

	out      []*event.Event // transitions not yet drained
	cause    Record         // the record being applied (Data not retained)
	vals     []value        // the fields of the event being folded (reused)
	keyBuf   []byte         // its group key (reused)
	rulesErr error
	invalid  int
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

// Invalid counts the records skipped because the fields the rules read (or
// a rule set) failed validation.
func (e *Engine) Invalid() int { return e.invalid }

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
	switch {
	case rec.Type == TypeRulesLoaded:
		if !e.fixed && e.valid(rec) {
			e.loadRules(rec.Data)
		}
	case e.rules != nil:
		if ti := e.rules.byType[rec.Type]; ti != nil {
			e.fold(ti, rec, t)
		}
	}
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

// eval re-evaluates g at t, at one of its events or at its deadline: its
// severities, the transition of its incident they call for, and its next
// deadline.
func (e *Engine) eval(g *group, t int64) {
	level, upAt, downAt, downEv := g.evaluate(t)
	e.transition(g, level, upAt, downAt, downEv, t)
	e.flapQuiet(g, t)
	e.schedule(g, t)
}

// Incidents returns the incidents the projection holds, newest onset first.
func (e *Engine) Incidents() []*Incident {
	out := make([]*Incident, 0, len(e.incidents))
	for _, inc := range e.incidents {
		out = append(out, inc)
	}
	SortIncidents(out)
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
