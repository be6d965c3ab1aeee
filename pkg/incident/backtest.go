package incident

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
)

// BacktestOptions configure a back-test.
type BacktestOptions struct {
	// Rules to test; nil folds with the rules recorded in the log (and then
	// reads the log from its start, to know the rules in force at From).
	Rules *Rules
	// From and To bound the range by event time; zero values mean the
	// start and the end of the log.
	From, To time.Time
	MaxSkew  time.Duration
	// Progress, if set, is told how many events were read out of how many.
	Progress func(done, total uint64)
}

// BacktestResult is what a rule set would have produced over a range.
type BacktestResult struct {
	// Incidents opened in the range, newest first, with every transition
	// decided before To.
	Incidents []*Incident
	// Events is how many events were folded; Invalid how many of them
	// failed validation (and only moved the clock).
	Events  uint64
	Invalid int
	// Last is the event time the fold reached.
	Last time.Time
}

// Backtest folds a range of EVENTS through a rule set without publishing
// anything.
func Backtest(ctx context.Context, b *bus.Bus, opts BacktestOptions) (*BacktestResult, error) {
	e := NewEngine(Options{Catalog: b.Catalog, Rules: opts.Rules, KeepResolved: 1 << 30})
	ro := ReadOptions{MaxSkew: opts.MaxSkew}
	if opts.Rules != nil && !opts.From.IsZero() {
		// Events are stored roughly in event-time order; a margin catches
		// producers that stamp events a little before storing them.
		ro.FromTime = opts.From.Add(-time.Minute)
	}
	res := &BacktestResult{}
	var first uint64
	to := int64(0)
	if !opts.To.IsZero() {
		to = opts.To.UnixNano()
	}
	errStop := fmt.Errorf("stop")
	err := Read(ctx, b.JS, ro, func(rec *Record, pos Position) error {
		if first == 0 {
			first = rec.Seq
		}
		if to != 0 && max(rec.Time, e.now) >= to {
			return errStop
		}
		e.Apply(rec)
		e.Drain()
		res.Events++
		if opts.Progress != nil && (res.Events%8192 == 0 || pos.Pending == 0) {
			opts.Progress(rec.Seq-first+1, pos.Last-first+1)
		}
		return nil
	})
	if err != nil && err != errStop {
		return nil, err
	}
	if to != 0 {
		e.AdvanceTo(to)
	}
	res.Last, res.Invalid = e.Now(), e.Invalid()
	for _, inc := range e.Incidents() {
		if InRange(inc, opts.From, opts.To) {
			res.Incidents = append(res.Incidents, inc)
		}
	}
	return res, nil
}

// InRange reports whether an incident opened in [from, to) (zero: unbounded).
func InRange(inc *Incident, from, to time.Time) bool {
	return (from.IsZero() || !inc.OpenedAt.Before(from)) && (to.IsZero() || inc.OpenedAt.Before(to))
}

// Diff compares back-tested incidents with the ones published for the
// same range.
type Diff struct {
	Same    []*Incident  `json:"same"`
	Changed []DiffChange `json:"changed"`
	Added   []*Incident  `json:"added"`   // only in the back-test
	Removed []*Incident  `json:"removed"` // only published
}

// DiffChange is an incident both have, with different outcomes.
type DiffChange struct {
	ID        string    `json:"id"`
	Backtest  *Incident `json:"backtest"`
	Published *Incident `json:"published"`
	What      []string  `json:"what"`
}

// Compare diffs back-tested incidents against published ones, looking only
// at what was decided before `to` (the back-test saw nothing later).
func Compare(backtest, published []*Incident, to time.Time) Diff {
	var d Diff
	pub := map[string]*Incident{}
	for _, p := range published {
		pub[p.ID] = p
	}
	seen := map[string]bool{}
	for _, bt := range backtest {
		p, ok := pub[bt.ID]
		if !ok {
			d.Added = append(d.Added, bt)
			continue
		}
		seen[bt.ID] = true
		if what := differences(bt, p, to); len(what) > 0 {
			d.Changed = append(d.Changed, DiffChange{ID: bt.ID, Backtest: bt, Published: p, What: what})
		} else {
			d.Same = append(d.Same, bt)
		}
	}
	for _, p := range published {
		if !seen[p.ID] {
			d.Removed = append(d.Removed, p)
		}
	}
	return d
}

// outcome is an incident's published history before `to`.
func outcome(inc *Incident, to time.Time) (sevs []string, resolved string) {
	for _, t := range inc.Transitions {
		if !t.Published || !to.IsZero() && !t.DecidedAt.Before(to) {
			continue
		}
		switch t.Type {
		case "incident_resolved":
			resolved = t.At.Format(time.RFC3339Nano)
		case "incident_suppressed":
			sevs = append(sevs, "suppressed:"+t.Severity)
		default:
			sevs = append(sevs, t.Severity)
		}
	}
	return sevs, resolved
}

func differences(bt, p *Incident, to time.Time) []string {
	var what []string
	bs, br := outcome(bt, to)
	ps, pr := outcome(p, to)
	if !slices.Equal(bs, ps) {
		what = append(what, fmt.Sprintf("severities %v, published %v", bs, ps))
	}
	if br != pr {
		what = append(what, fmt.Sprintf("resolved %q, published %q", br, pr))
	}
	return what
}

// WriteTable prints incidents one per line.
func WriteTable(w io.Writer, incs []*Incident) {
	if len(incs) == 0 {
		fmt.Fprintln(w, "(none)")
		return
	}
	for _, inc := range incs {
		fmt.Fprintln(w, Line(inc))
	}
}

// Line is an incident on one line.
func Line(inc *Incident) string {
	state := event.StateOpen
	if inc.State == event.StateFlapping {
		state = event.StateFlapping
	}
	if inc.State == event.StateSuppressed {
		state = event.StateSuppressed + " by " + inc.SuppressedBy
	} else if inc.ResolvedAt != nil {
		state = event.StateResolved + " " + inc.ResolvedAt.Format(time.RFC3339)
	}
	return fmt.Sprintf("%s  %-3s peak %-3s %-28s %-30s opened %s  %s", inc.ID, inc.Severity, inc.PeakSeverity, inc.Rule,
		groupLabel(inc.Group), inc.OpenedAt.Format(time.RFC3339), state)
}

func groupLabel(g Labels) string {
	s := ""
	for i, l := range g {
		if i > 0 {
			s += ","
		}
		s += l.Name + "=" + l.Value
	}
	return s
}
