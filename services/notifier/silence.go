package notifier

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/event"
)

// Silences and maintenance windows (docs/notifier.md#silences-and-maintenance).
// A silence is an event in NOTIFICATIONS (silence_created, silence_expired)
// folded like subscriptions. It is applied where a transition is routed:
// the routing decision is already the one written-once record of where a
// transition goes, so holding it there makes the hold a ledger entry too
// (notification_suppressed, one per transition and destination) and a
// rebuild folds the same decisions instead of making them again. Whether a
// transition is silenced is decided from its event time, as the messages
// are rendered from it: a transition routed late (a restart, a takeover) is
// held or not exactly as it would have been on time.

// silenceLabels are the incident labels a matcher may name.
var silenceLabels = []string{"rule", "app", "provider", "route", "integration", "severity"}

// maxWindow bounds a recurring window's duration: a week.
const maxWindow = 7 * 24 * time.Hour

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

var clockPattern = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$`)

// Silence is a silence as folded from the ledger.
type Silence struct {
	ID        string                 `json:"id"`
	Matchers  []event.SilenceMatcher `json:"matchers"`
	StartsAt  time.Time              `json:"startsAt"`
	EndsAt    time.Time              `json:"endsAt,omitzero"`
	Recurring *event.RecurringWindow `json:"recurring,omitempty"`
	CreatedBy string                 `json:"createdBy"`
	Comment   string                 `json:"comment,omitempty"`
	Via       string                 `json:"via"`
	CreatedAt time.Time              `json:"createdAt"`
	ExpiredAt time.Time              `json:"expiredAt,omitzero"`
	ExpiredBy string                 `json:"expiredBy,omitempty"`
	// Status is computed when listed: pending, active or expired.
	Status string `json:"status,omitempty"`
	// Suppressed counts the notifications it held.
	Suppressed int `json:"suppressed"`

	rules *silenceRules
}

// silenceRules is a silence compiled: its matchers and its weekly window.
type silenceRules struct {
	re   []*regexp.Regexp // per matcher (nil: compared exactly)
	loc  *time.Location
	days [7]bool
	hour int // the windows' start, in loc
	min  int
	dur  time.Duration
}

// compileSilence checks a silence and compiles it; the error names the
// field at fault.
func compileSilence(ms []event.SilenceMatcher, rw *event.RecurringWindow) (*silenceRules, error) {
	if len(ms) == 0 {
		return nil, fmt.Errorf("matchers: at least one is needed (a silence of everything would hide every incident)")
	}
	if len(ms) > 16 {
		return nil, fmt.Errorf("matchers: at most 16")
	}
	c := &silenceRules{re: make([]*regexp.Regexp, len(ms))}
	for i, m := range ms {
		if !slices.Contains(silenceLabels, m.Name) {
			return nil, fmt.Errorf("matchers[%d].name: %q is not one of %s", i, m.Name, strings.Join(silenceLabels, ", "))
		}
		if m.Value == "" || len(m.Value) > 256 {
			return nil, fmt.Errorf("matchers[%d].value: 1 to 256 characters", i)
		}
		if m.IsRegex {
			re, err := regexp.Compile("^(?:" + m.Value + ")$")
			if err != nil {
				return nil, fmt.Errorf("matchers[%d].value: %w", i, err)
			}
			c.re[i] = re
		}
	}
	if rw == nil {
		return c, nil
	}
	if len(rw.Days) == 0 {
		return nil, fmt.Errorf("recurring.days: at least one of mon, tue, wed, thu, fri, sat, sun")
	}
	for _, d := range rw.Days {
		wd, ok := weekdays[d]
		if !ok {
			return nil, fmt.Errorf("recurring.days: %q is not one of mon, tue, wed, thu, fri, sat, sun", d)
		}
		c.days[wd] = true
	}
	hm := clockPattern.FindStringSubmatch(rw.Start)
	if hm == nil {
		return nil, fmt.Errorf("recurring.start: %q is not a time of day HH:MM", rw.Start)
	}
	c.hour, c.min = int(hm[1][0]-'0')*10+int(hm[1][1]-'0'), int(hm[2][0]-'0')*10+int(hm[2][1]-'0')
	d, err := time.ParseDuration(rw.Duration)
	if err != nil || d <= 0 || d > maxWindow {
		return nil, fmt.Errorf("recurring.duration: %q is not a duration between 1s and 168h", rw.Duration)
	}
	c.dur = d
	if rw.TimeZone == "" {
		return nil, fmt.Errorf("recurring.timeZone: an IANA time zone is needed (UTC, Europe/Berlin…)")
	}
	if c.loc, err = time.LoadLocation(rw.TimeZone); err != nil {
		return nil, fmt.Errorf("recurring.timeZone: %w", err)
	}
	return c, nil
}

// end is when the silence stops for good (zero: never), an early expiry
// included.
func (s *Silence) end() time.Time {
	end := s.EndsAt
	if !s.ExpiredAt.IsZero() && (end.IsZero() || s.ExpiredAt.Before(end)) {
		end = s.ExpiredAt
	}
	return end
}

// window is the window of a recurring silence that contains t.
func (s *Silence) window(t time.Time) (start, end time.Time, ok bool) {
	c := s.rules
	lt := t.In(c.loc)
	for back := 0; back <= int(maxWindow/(24*time.Hour))+1; back++ {
		ws := time.Date(lt.Year(), lt.Month(), lt.Day()-back, c.hour, c.min, 0, 0, c.loc)
		if !c.days[ws.Weekday()] {
			continue
		}
		if we := ws.Add(c.dur); !t.Before(ws) && t.Before(we) {
			return ws, we, true
		}
	}
	return time.Time{}, time.Time{}, false
}

// ActiveAt reports whether the silence holds notifications at t.
func (s *Silence) ActiveAt(t time.Time) bool {
	if s.rules == nil || t.Before(s.StartsAt) {
		return false
	}
	if end := s.end(); !end.IsZero() && !t.Before(end) {
		return false
	}
	if s.Recurring != nil {
		_, _, ok := s.window(t)
		return ok
	}
	return true
}

// nextChange is the first time after now at which the silence starts or
// stops holding (zero: never again).
func (s *Silence) nextChange(now time.Time) time.Time {
	if s.rules == nil {
		return time.Time{}
	}
	end := s.end()
	if !end.IsZero() && !now.Before(end) {
		return time.Time{}
	}
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (end.IsZero() || !t.After(end)) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	consider(end)
	if s.Recurring == nil {
		consider(s.StartsAt)
	} else {
		if _, _, ok := s.window(s.StartsAt); ok {
			consider(s.StartsAt) // a series starting inside a window
		}
		from := now
		if s.StartsAt.After(now) {
			from = s.StartsAt
		}
		if _, we, ok := s.window(from); ok {
			consider(we)
		}
		// The next window's start: the first day, from today on, that has one.
		lt := from.In(s.rules.loc)
		for ahead := 0; ahead <= 8; ahead++ {
			ws := time.Date(lt.Year(), lt.Month(), lt.Day()+ahead, s.rules.hour, s.rules.min, 0, 0, s.rules.loc)
			if s.rules.days[ws.Weekday()] && ws.After(from) {
				consider(ws)
				break
			}
		}
	}
	return next
}

// status is the silence's status at now, as listed.
func (s *Silence) status(now time.Time) string {
	switch end := s.end(); {
	case !end.IsZero() && !now.Before(end):
		return "expired"
	case s.ActiveAt(now):
		return "active"
	}
	return "pending"
}

// Matches reports whether every matcher holds for an incident's state.
func (s *Silence) Matches(snap *Snapshot) bool {
	if s.rules == nil {
		return false
	}
	for i, m := range s.Matchers {
		var v string
		switch m.Name {
		case "rule":
			v = snap.Rule
		case "severity":
			v = snap.Severity
		default:
			v = snap.Group[m.Name]
		}
		if re := s.rules.re[i]; re != nil {
			if !re.MatchString(v) {
				return false
			}
		} else if v != m.Value {
			return false
		}
	}
	return true
}

// MatcherString writes matchers as the slash command and the CLI take
// them: app=shop provider=~fast.*
func MatcherString(ms []event.SilenceMatcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		op := "="
		if m.IsRegex {
			op = "=~"
		}
		parts[i] = m.Name + op + m.Value
	}
	return strings.Join(parts, " ")
}

// ParseMatchers reads matchers written name=value or name=~regex.
func ParseMatchers(args []string) ([]event.SilenceMatcher, error) {
	var ms []event.SilenceMatcher
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: matchers are name=value or name=~regex (%s)", a, strings.Join(silenceLabels, ", "))
		}
		m := event.SilenceMatcher{Name: k, Value: v}
		if strings.HasPrefix(v, "~") {
			m.Value, m.IsRegex = v[1:], true
		}
		ms = append(ms, m)
	}
	if _, err := compileSilence(ms, nil); err != nil {
		return nil, err
	}
	return ms, nil
}

// silenceState is the part of the projection silences make: the silences
// and the notifications they held.
type silenceState struct {
	Silences map[string]*Silence
	// held: incident → destination → transition → the silence that held it.
	held map[string]map[string]map[string]string
}

func newSilenceState() silenceState {
	return silenceState{Silences: map[string]*Silence{}, held: map[string]map[string]map[string]string{}}
}

// applySilence folds silence_created, silence_expired and
// notification_suppressed.
func (s *State) applySilence(e *event.Event) {
	switch d := e.Data.(type) {
	case event.SilenceCreated:
		// A silence whose rules do not compile (never written by this
		// notifier, which checks them) holds nothing.
		rules, _ := compileSilence(d.Matchers, d.Recurring)
		s.Silences[d.SilenceID] = &Silence{ID: d.SilenceID, Matchers: d.Matchers, StartsAt: d.StartsAt, EndsAt: d.EndsAt,
			Recurring: d.Recurring, CreatedBy: d.CreatedBy, Comment: d.Comment, Via: d.Via, CreatedAt: e.Time, rules: rules}
	case event.SilenceExpired:
		if sl := s.Silences[d.SilenceID]; sl != nil && sl.ExpiredAt.IsZero() {
			sl.ExpiredAt, sl.ExpiredBy = d.At, d.By
		}
	case event.NotificationSuppressed:
		byDest := s.held[d.IncidentID]
		if byDest == nil {
			byDest = map[string]map[string]string{}
			s.held[d.IncidentID] = byDest
		}
		if byDest[d.Destination] == nil {
			byDest[d.Destination] = map[string]string{}
		}
		if _, dup := byDest[d.Destination][d.Transition]; !dup {
			byDest[d.Destination][d.Transition] = d.SilenceID
			if sl := s.Silences[d.SilenceID]; sl != nil {
				sl.Suppressed++
			}
		}
	}
}

// Suppressed reports whether a transition was held from a destination.
func (s *State) Suppressed(incident, transition, dest string) bool {
	_, ok := s.held[incident][dest][transition]
	return ok
}

// Suppressions lists every held notification, sorted:
// "<incident>/<transition>/<destination> by <silence>".
func (s *State) Suppressions() []string {
	var out []string
	for inc, byDest := range s.held {
		for dst, byKey := range byDest {
			for key, sil := range byKey {
				out = append(out, inc+"/"+key+"/"+dst+" by "+sil)
			}
		}
	}
	sort.Strings(out)
	return out
}

// silencing lists the silences that hold a state at t, by id.
func (s *State) silencing(snap *Snapshot, t time.Time) []string {
	var ids []string
	for id, sl := range s.Silences {
		if sl.ActiveAt(t) && sl.Matches(snap) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// hold splits a transition's destinations into those it is sent to and
// those a silence holds it from. A silence active at the transition's
// time holds it everywhere, except a resolve to a destination that
// already follows the incident (it saw the incident before the silence):
// that one is told, so no message is left saying the incident is open.
func (s *State) hold(t *Transition, dests []string) (send []string, held []event.NotificationSuppressed) {
	ids := s.silencing(&t.Snapshot, t.At)
	if len(ids) == 0 {
		return dests, nil
	}
	following := map[string]bool{}
	for _, d := range s.Following(t.IncidentID) {
		following[d] = true
	}
	if t.State == event.StateResolved {
		// A resolve goes only where the incident was seen; where it was
		// held, its resolve is held (and recorded) too.
		var more []string
		for d := range s.held[t.IncidentID] {
			if !following[d] && !slices.Contains(dests, d) {
				more = append(more, d)
			}
		}
		sort.Strings(more)
		dests = append(slices.Clip(dests), more...)
	}
	send = []string{}
	for _, d := range dests {
		if t.State == event.StateResolved && following[d] {
			send = append(send, d)
			continue
		}
		held = append(held, event.NotificationSuppressed{IncidentID: t.IncidentID, Transition: t.Transition,
			Destination: d, SilenceID: ids[0]})
	}
	return send, held
}

// releases are the announcements owed at now: each open incident that had
// a transition held from a destination which has not been told since,
// and that no silence holds any more, goes to those destinations at its
// latest transition — one root showing its current state (or one edit of
// a root posted before the silence).
func (s *State) releases(now time.Time) []event.NotificationRouted {
	var out []event.NotificationRouted
	for inc, byDest := range s.held {
		tl := s.Timelines[inc]
		if tl == nil || tl.Latest().State != event.StateOpen {
			continue
		}
		latest := tl.Latest()
		if !s.IsRouted(inc, latest.Transition) || len(s.silencing(&latest.Snapshot, now)) > 0 {
			// Not routed yet: its routing comes first (it may be held,
			// or reach those destinations by itself), then a sweep.
			continue
		}
		r := event.NotificationRouted{IncidentID: inc, Transition: latest.Transition, Destinations: []string{}}
		for dst, byKey := range byDest {
			l := s.Lanes[laneKey{inc, dst}]
			var by []string
			for key, sil := range byKey {
				if l == nil || l.Target < Ordinal(key) {
					by = append(by, sil)
				}
			}
			if len(by) == 0 {
				continue
			}
			sort.Strings(by)
			r.Destinations = append(r.Destinations, dst)
			r.Matches = append(r.Matches, event.RouteMatch{Destination: dst, By: "silence_ended:" + by[0]})
		}
		if len(r.Destinations) == 0 {
			continue
		}
		sort.Strings(r.Destinations)
		sort.Slice(r.Matches, func(a, b int) bool { return r.Matches[a].Destination < r.Matches[b].Destination })
		out = append(out, r)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].IncidentID < out[b].IncidentID })
	return out
}

// nextSilenceChange is the first time after now at which a silence starts
// or stops holding (zero: none).
func (s *State) nextSilenceChange(now time.Time) time.Time {
	var next time.Time
	for _, sl := range s.Silences {
		if t := sl.nextChange(now); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

// listSilences lists the silences with their status at now, newest first;
// expired ones only with all.
func (s *State) listSilences(now time.Time, all bool) []Silence {
	out := []Silence{}
	for _, sl := range s.Silences {
		c := *sl
		c.Status = sl.status(now)
		if c.Status == "expired" && !all {
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].CreatedAt.Equal(out[b].CreatedAt) {
			return out[a].CreatedAt.After(out[b].CreatedAt)
		}
		return out[a].ID < out[b].ID
	})
	return out
}
