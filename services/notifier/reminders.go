package notifier

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/slack"
)

// Reminders. An open, unacknowledged incident is re-announced in its
// thread — never as a new message in the channel — when nothing was posted
// there for repeatInterval (notifier.repeatInterval, or its route's). A
// reminder is a step like the others, with its own ledger key
// (reminder-<n>, n counting the lane's reminders), so it is attempted,
// recorded and looked up in doubt exactly as a reply is: posted once across
// restarts and rebuilds. Its time comes from the ledger: a lane's last post
// is the time its ledger entry was recorded (the notifier's clock), so a
// rebuild knows when the next one is due. Reminders go only where the
// root has a thread (the Web API): elsewhere every step is a new message.

// reminderKey names a lane's n-th reminder.
func reminderKey(n int) string { return "reminder-" + strconv.Itoa(n) }

// reminderNumber reads a reminder's key ("reminder-3": 3).
func reminderNumber(key string) (int, bool) {
	v, ok := strings.CutPrefix(key, "reminder-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}

// isReminder reports whether a step is a reminder.
func isReminder(st *Step) bool {
	_, ok := reminderNumber(st.Key)
	return ok
}

var tsPattern = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)

// reminderTimers wake lanes whose next reminder is due later: one timer
// per lane and term.
type reminderTimers struct {
	mu     sync.Mutex
	timers map[laneKey]reminderTimer
}

type reminderTimer struct {
	run context.Context // the term that set it
	t   *time.Timer
}

// armReminder wakes the lane after d, unless this term set a timer for it
// already (it wakes the lane sooner or as soon: the next reminder is due
// later after every post).
func (n *Notifier) armReminder(l *Lane, d time.Duration) {
	n.workersMu.Lock()
	run := n.runCtx
	n.workersMu.Unlock()
	k := laneKey{l.Incident, l.Dest}
	rt := &n.reminders
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.timers == nil {
		rt.timers = map[laneKey]reminderTimer{}
	}
	if old, ok := rt.timers[k]; ok {
		if old.run == run {
			return
		}
		old.t.Stop() // an earlier term's
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		rt.mu.Lock()
		if cur, ok := rt.timers[k]; ok && cur.t == t {
			delete(rt.timers, k)
		}
		rt.mu.Unlock()
		if run.Err() != nil {
			return // that term ended; the next one arms its own
		}
		n.mu.Lock()
		cur := n.state.Lanes[k]
		n.mu.Unlock()
		if cur != nil {
			n.kick(cur)
		}
	})
	rt.timers[k] = reminderTimer{run: run, t: t}
}

// reminder is a lane's reminder when one is due, its state otherwise
// settled (nil: none due; a timer wakes the lane when one will be). The
// caller holds n.mu.
func (n *Notifier) reminder(l *Lane) *Step {
	i := n.state.Timelines[l.Incident]
	if i == nil || !l.Rooted || l.RootTS == "" || !capsOf(l.Mode).Thread {
		return nil
	}
	latest := i.Latest()
	if latest.State != event.StateOpen || l.Target < latest.Ordinal || n.state.Acks[l.Incident] != nil {
		return nil
	}
	t := i.At(l.Target)
	every := n.repeatInterval(l.Dest, &t.Snapshot)
	if every <= 0 {
		return nil
	}
	if wait := l.LastPost.Add(every).Sub(n.now()); wait > 0 {
		n.armReminder(l, wait)
		return nil
	}
	return &Step{Kind: StepReply, Key: reminderKey(l.Reminders + 1), Snap: t.Snapshot, Cause: t.EventID,
		Due: l.LastPost.Add(every)}
}

// repeatInterval is a destination's reminder interval for an incident: the
// shortest of the routes that send it there (a route's own, or the
// notifier's); the notifier's for a destination only subscriptions chose.
func (n *Notifier) repeatInterval(dst string, s *Snapshot) time.Duration {
	var best time.Duration
	for _, d := range n.routeDurations(dst, s, n.cfg.RepeatInterval, func(r Route) *config.Duration { return r.RepeatInterval }) {
		if d > 0 && (best == 0 || d < best) {
			best = d
		}
	}
	return best
}

// reminderBlocks and reminderText render a reminder: a thread reply saying
// the incident is still open, for how long when it was due, at what
// severity, with the latest evidence.
func reminderBlocks(st *Step) []slack.Block {
	s := st.Snap
	return []slack.Block{slack.Section(fmt.Sprintf("🔔 *Still open* after %s · %s · %s · not acknowledged",
		openFor(st), s.Severity, evidence(s)))}
}

func reminderText(st *Step) string {
	s := st.Snap
	n, _ := reminderNumber(st.Key)
	return slack.Truncate(fmt.Sprintf("Reminder %d: %s (%s) is still open after %s at %s, not acknowledged — %s", n,
		escape(s.Rule), groupString(escapedGroup(s.Group)), openFor(st), s.Severity, evidence(s)), slack.MaxFallbackText)
}

// openFor is how long the incident had been open when the reminder was due.
func openFor(st *Step) string {
	s := st.Snap
	if s.OpenedAt.IsZero() || st.Due.Before(s.OpenedAt) {
		return "unknown"
	}
	s.ResolvedAt = st.Due.Truncate(time.Second)
	return duration(s)
}
