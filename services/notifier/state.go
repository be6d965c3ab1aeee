package notifier

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/slack"
)

// Snapshot is an incident's state right after one of its transitions: what
// a message about that transition shows.
type Snapshot struct {
	IncidentID string            `json:"incidentId"`
	Rule       string            `json:"rule"`
	Kind       string            `json:"kind,omitempty"`
	Summary    string            `json:"summary,omitempty"`
	Runbook    string            `json:"runbook,omitempty"`
	Group      map[string]string `json:"group"`
	Severity   string            `json:"severity"`
	Peak       string            `json:"peakSeverity"`
	// State is where the incident stands (event.StateOpen or
	// event.StateResolved: the notifier does not follow suppressed ones).
	// Its JSON name is the webhook payload's "status".
	State      event.IncidentState `json:"status"`
	OpenedAt   time.Time           `json:"openedAt,omitzero"`
	ResolvedAt time.Time           `json:"resolvedAt,omitzero"`
	// Transition is this snapshot's transition: its key, ordinal, time and,
	// for an escalation, the severities it went from and to.
	Transition string         `json:"transition"`
	Ordinal    int            `json:"ordinal"`
	At         time.Time      `json:"at"`
	From       string         `json:"from,omitempty"`
	To         string         `json:"to,omitempty"`
	Evidence   event.Evidence `json:"evidence"`
	// Flapping is set while the incident is held open by its rule's flap
	// control (from the transition that started it, From = To), and kept
	// on its resolution.
	Flapping *event.Flapping `json:"flapping,omitempty"`
}

// Transition is one incident transition as the notifier knows it.
type Transition struct {
	Snapshot
	EventID string
	Seq     uint64
	// seen is when the live notifier first handled it (zero when rebuilt).
	seen time.Time
}

// Timeline is the notifier's view of one incident: its transitions, in
// ordinal order. (The incident engine's own state is pkg/incident's
// Incident; the wire events are pkg/event's Incident*.)
type Timeline struct {
	ID          string
	Transitions []*Transition
}

// Latest is the incident's latest transition.
func (tl *Timeline) Latest() *Transition { return tl.Transitions[len(tl.Transitions)-1] }

// At is the latest transition whose ordinal is at most ord.
func (tl *Timeline) At(ord int) *Transition {
	var t *Transition
	for _, x := range tl.Transitions {
		if x.Ordinal > ord {
			break
		}
		t = x
	}
	if t == nil {
		t = tl.Transitions[0]
	}
	return t
}

func (tl *Timeline) has(ord int) bool {
	for _, x := range tl.Transitions {
		if x.Ordinal == ord {
			return true
		}
	}
	return false
}

// Lane is one incident in one destination: its root message and how far
// its updates and replies have gone. Lanes are folded from the ledger.
type Lane struct {
	Incident string `json:"incidentId"`
	Dest     string `json:"destination"`
	// Join is the ordinal of the transition that brought the incident here.
	Join    int    `json:"join"`
	JoinKey string `json:"joinTransition"`
	// Target is the latest transition routed here.
	Target int `json:"target"`
	// Rooted: the root message exists (RootTS is empty for sinks without one).
	Rooted      bool   `json:"rooted"`
	RootTS      string `json:"rootTs,omitempty"`
	RootChannel string `json:"rootChannel,omitempty"`
	Mode        string `json:"mode,omitempty"`
	// Rendered is the ordinal whose state the root shows (-1: none).
	Rendered int `json:"rendered"`
	// Replied is the last ordinal replied to (or given up on).
	Replied      int `json:"replied"`
	RootFailedAt int `json:"rootFailedAt"`
	Failures     int `json:"failures"`
	// Attempts are the posts attempted (slack_post_attempted) by step
	// ("root:opened", "reply:resolved-2") and when: a step attempted and not
	// recorded as posted is in doubt.
	Attempts map[string]time.Time `json:"attempts,omitempty"`
	// Replies are the thread replies' ts by transition.
	Replies map[string]string `json:"replies,omitempty"`
	// AckShown: the root was edited to show the acknowledgement (ack.go).
	AckShown bool `json:"ackShown,omitempty"`
	// Reminders is the number of the last reminder posted or given up on
	// (reminder-<n>), and LastPost when the lane's last message was
	// recorded, by the notifier's clock: the next reminder is due
	// repeatInterval after it (reminders.go).
	Reminders int       `json:"reminders,omitempty"`
	LastPost  time.Time `json:"lastPost,omitzero"`
	// AckSent: the acknowledge step is done (sent, or given up), for sinks
	// that acknowledge (PagerDuty).
	AckSent bool `json:"ackSent,omitempty"`
	// Group is the incident whose root the lane shares (group.go; itself:
	// it leads the group), and GroupShown the version the shared root shows.
	Group      string `json:"group,omitempty"`
	GroupShown int    `json:"groupShown,omitempty"`
}

// attemptKey names a step among a lane's attempts.
func attemptKey(kind, key string) string { return kind + ":" + key }

// Subscription is an active channel subscription.
type Subscription struct {
	ID      string                  `json:"id"`
	Channel string                  `json:"channel"`
	Match   event.SubscriptionMatch `json:"match"`
	Filter  string                  `json:"filter"`
	Via     string                  `json:"via"`
	By      string                  `json:"by,omitempty"`
	Created time.Time               `json:"createdAt"`
}

type laneKey struct{ incident, dest string }

// State is the notifier's projection of INCIDENTS (what should be said)
// and NOTIFICATIONS (what was said, where it goes, who subscribed). The
// same fold runs live, at start and in `herald replay --projection slack`.
// It is not safe for concurrent use; the notifier guards it.
type State struct {
	Timelines     map[string]*Timeline
	Lanes         map[laneKey]*Lane
	byIncident    map[string][]*Lane
	Routed        map[string]map[string]bool // incident → transition keys
	Subscriptions map[string]*Subscription
	// silences and the notifications they held (silence.go).
	silenceState
	// Acks are the incidents' acknowledgements, the first of each (ack.go).
	Acks map[string]*Ack
	// acked: the incidents acknowledged, and the event that did it.
	acked map[string]string
	// groups: the shared roots (group.go).
	groups groupState
	// Counts of ledger entries folded.
	Posted, Updated, Failed, Deleted int
}

// NewState returns an empty projection.
func NewState() *State {
	return &State{
		Timelines: map[string]*Timeline{}, Lanes: map[laneKey]*Lane{}, byIncident: map[string][]*Lane{},
		Routed: map[string]map[string]bool{}, Subscriptions: map[string]*Subscription{}, Acks: map[string]*Ack{},
		silenceState: newSilenceState(), groups: newGroupState(),
	}
}

// TransitionKey names an incident transition: "opened", "escalated-<n>",
// "resolved-<n>" with n its ordinal within the incident.
func TransitionKey(typ event.Type, ord int) string {
	switch typ {
	case "incident_opened":
		return "opened"
	case "incident_escalated":
		return "escalated-" + strconv.Itoa(ord)
	}
	return "resolved-" + strconv.Itoa(ord)
}

// Ordinal reads a transition key's ordinal ("opened" is 0).
func Ordinal(key string) int {
	_, n, ok := strings.Cut(key, "-")
	if !ok {
		return 0
	}
	v, _ := strconv.Atoi(n)
	return v
}

// subjectOrdinal reads the ordinal of incidents.<type>.<id>.<ordinal>.
func subjectOrdinal(subject string) (int, bool) {
	toks := strings.Split(subject, ".")
	if len(toks) != 4 {
		return 0, false
	}
	n, err := strconv.Atoi(toks[3])
	return n, err == nil && n >= 0
}

// Apply folds one event of INCIDENTS or NOTIFICATIONS; other events are
// ignored. It returns the incident's transition when e is one (nil otherwise).
func (s *State) Apply(e *event.Event) *Transition {
	switch d := e.Data.(type) {
	case event.IncidentOpened, event.IncidentEscalated, event.IncidentResolved:
		return s.applyIncident(e)
	case event.NotificationRouted:
		s.applyRouted(d)
		s.applyGroups(d, e.Time)
	case event.SlackMessagePosted:
		s.applyPosted(d, e.Time)
	case event.SlackPostAttempted:
		l := s.lane(d.IncidentID, d.Destination, d.Transition)
		if l.Attempts == nil {
			l.Attempts = map[string]time.Time{}
		}
		l.Attempts[attemptKey(d.Action, d.Transition)] = e.Time
	case event.SlackMessageDeleted:
		s.Deleted++
	case event.SlackMessageUpdated:
		s.Updated++
		l := s.lane(d.IncidentID, dest(d.Destination, d.Channel), d.Transition)
		if s.groupUpdated(l, d.Transition) {
			break
		}
		l.Rendered = max(l.Rendered, Ordinal(d.Transition))
		l.AckShown = l.AckShown || d.Transition == ackKey
	case event.NotificationFailed:
		s.applyFailed(d, e.Time)
	case event.PagerDutyEventSent:
		s.applyPagerDuty(d)
	case event.IncidentAcknowledged:
		s.applyAck(d, e.Time)
		s.applyAcknowledged(e, d)
	case event.SubscriptionCreated:
		s.Subscriptions[d.SubscriptionID] = &Subscription{ID: d.SubscriptionID, Channel: d.Channel, Match: d.Match,
			Filter: FilterString(d.Match), Via: d.Via, By: d.By, Created: e.Time}
	case event.SubscriptionRemoved:
		delete(s.Subscriptions, d.SubscriptionID)
	case event.SilenceCreated, event.SilenceExpired, event.NotificationSuppressed:
		s.applySilence(e)
	}
	return nil
}

// applyPosted folds a post: a root gives the lane its message, a reply
// moves it on in the thread.
func (s *State) applyPosted(d event.SlackMessagePosted, at time.Time) {
	s.Posted++
	l := s.lane(d.IncidentID, dest(d.Destination, d.Channel), d.Transition)
	if at.After(l.LastPost) {
		l.LastPost = at
	}
	if n, ok := reminderNumber(d.Transition); ok {
		l.Reminders = max(l.Reminders, n)
		return
	}
	if d.Action == "reply" {
		l.Replied = max(l.Replied, Ordinal(d.Transition))
		if d.TS != "" {
			if l.Replies == nil {
				l.Replies = map[string]string{}
			}
			l.Replies[d.Transition] = d.TS
		}
		return
	}
	l.Rooted, l.RootTS, l.RootChannel, l.Mode = true, d.TS, d.Channel, d.Mode
	state := s.groupRooted(l, d.State)
	if state == "" {
		state = d.Transition
	}
	l.Rendered = max(l.Rendered, Ordinal(state))
	if !capsOf(d.Mode).Edit {
		// A sink that cannot edit told the story so far in that message.
		l.Replied = max(l.Replied, Ordinal(state))
	}
}

// applyFailed folds a step given up for good: the lane goes past it.
func (s *State) applyFailed(d event.NotificationFailed, at time.Time) {
	s.Failed++
	l := s.lane(d.IncidentID, d.Destination, d.Transition)
	if slack.KindOfCode(d.Error).Retryable() {
		// Recorded by a version that gave up on broken credentials: the
		// step is still owed, and is retried.
		return
	}
	l.Failures++
	if n, ok := reminderNumber(d.Transition); ok {
		// A reminder given up on: the next one is due an interval later.
		l.Reminders = max(l.Reminders, n)
		if at.After(l.LastPost) {
			l.LastPost = at
		}
		return
	}
	ord := Ordinal(d.Transition)
	switch d.Action {
	case "root":
		l.RootFailedAt = max(l.RootFailedAt, ord)
		l.Replied = max(l.Replied, ord)
	case "update":
		l.Rendered = max(l.Rendered, ord)
	case "reply":
		l.Replied = max(l.Replied, ord)
	case StepAck:
		l.AckSent = true
	}
}

func dest(destination, channel string) string {
	if destination != "" {
		return destination
	}
	return channel
}

// snapshotOf is the incident's state after the transition e (its ordinal
// and key aside), from the state it had at its latest transition.
func (s *State) snapshotOf(e *event.Event) (string, Snapshot) {
	prev := func(id string) *Snapshot {
		if i := s.Timelines[id]; i != nil {
			return &i.Latest().Snapshot
		}
		return nil
	}
	var snap Snapshot
	switch d := e.Data.(type) {
	case event.IncidentOpened:
		return d.IncidentID, Snapshot{IncidentID: d.IncidentID, Rule: d.Rule, Kind: d.Kind, Summary: d.Summary,
			Runbook: d.Runbook, Group: d.Group, Severity: d.Severity, Peak: d.Severity, State: event.StateOpen,
			OpenedAt: d.OpenedAt, At: d.OpenedAt, Evidence: d.Evidence}
	case event.IncidentEscalated:
		if p := prev(d.IncidentID); p != nil {
			snap = *p
		} else {
			snap = Snapshot{IncidentID: d.IncidentID, Rule: d.Rule, Group: d.Group, Peak: d.To}
		}
		snap.State, snap.Severity, snap.From, snap.To, snap.At, snap.Evidence = event.StateOpen, d.To, d.From, d.To, d.At, d.Evidence
		snap.Flapping = d.Flapping
		if d.Summary != "" { // re-rendered from this evidence (absent from older events)
			snap.Summary = d.Summary
		}
		if severityRank(d.To) > severityRank(snap.Peak) {
			snap.Peak = d.To
		}
		return d.IncidentID, snap
	case event.IncidentResolved:
		if p := prev(d.IncidentID); p != nil {
			snap = *p
		} else {
			snap = Snapshot{IncidentID: d.IncidentID, Rule: d.Rule, Group: d.Group, Severity: d.PeakSeverity}
		}
		snap.State, snap.OpenedAt, snap.ResolvedAt, snap.At, snap.Peak, snap.Evidence =
			event.StateResolved, d.OpenedAt, d.ResolvedAt, d.ResolvedAt, d.PeakSeverity, d.Evidence
		snap.From, snap.To = "", ""
		if d.Summary != "" {
			snap.Summary = d.Summary
		}
		return d.IncidentID, snap
	}
	return "", snap
}

func (s *State) applyIncident(e *event.Event) *Transition {
	id, snap := s.snapshotOf(e)
	i := s.Timelines[id]
	ord, ok := subjectOrdinal(e.Subject)
	if !ok {
		// Not on the incidents.<type>.<id>.<ordinal> convention: next in line.
		ord = 0
		if i != nil {
			ord = i.Latest().Ordinal + 1
		}
	}
	if i != nil && i.has(ord) {
		return nil // already folded (a redelivery, or read at start and delivered again)
	}
	snap.Ordinal, snap.Transition = ord, TransitionKey(e.Type, ord)
	t := &Transition{Snapshot: snap, EventID: e.ID, Seq: e.Sequence}
	if i == nil {
		i = &Timeline{ID: id}
		s.Timelines[id] = i
	}
	i.Transitions = append(i.Transitions, t)
	sort.SliceStable(i.Transitions, func(a, b int) bool { return i.Transitions[a].Ordinal < i.Transitions[b].Ordinal })
	return t
}

func (s *State) applyRouted(d event.NotificationRouted) {
	if s.Routed[d.IncidentID] == nil {
		s.Routed[d.IncidentID] = map[string]bool{}
	}
	s.Routed[d.IncidentID][d.Transition] = true
	ord := Ordinal(d.Transition)
	for _, dst := range d.Destinations {
		l := s.lane(d.IncidentID, dst, d.Transition)
		l.Target = max(l.Target, ord)
	}
}

// lane returns the lane of an incident in a destination, creating it as
// joining at the transition given.
func (s *State) lane(incident, dst, key string) *Lane {
	k := laneKey{incident, dst}
	if l, ok := s.Lanes[k]; ok {
		return l
	}
	ord := Ordinal(key)
	l := &Lane{Incident: incident, Dest: dst, Join: ord, JoinKey: key, Target: ord, Rendered: -1, Replied: ord, RootFailedAt: -1}
	s.Lanes[k] = l
	s.byIncident[incident] = append(s.byIncident[incident], l)
	return l
}

// IsRouted reports whether a transition's destinations are decided.
func (s *State) IsRouted(incident, key string) bool { return s.Routed[incident][key] }

// LanesOf returns an incident's lanes.
func (s *State) LanesOf(incident string) []*Lane { return s.byIncident[incident] }

// Following lists the destinations that already receive an incident.
func (s *State) Following(incident string) []string {
	var out []string
	for _, l := range s.byIncident[incident] {
		out = append(out, l.Dest)
	}
	return out
}

// Open returns the open incidents' latest states, oldest first.
func (s *State) Open() []Snapshot {
	var out []Snapshot
	for _, i := range s.Timelines {
		if t := i.Latest(); t.State == event.StateOpen {
			out = append(out, t.Snapshot)
		}
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].OpenedAt.Equal(out[b].OpenedAt) {
			return out[a].OpenedAt.Before(out[b].OpenedAt)
		}
		return out[a].IncidentID < out[b].IncidentID
	})
	return out
}

// Caps are what a sink can do with a message it posted. Ack: it is told
// that the incident was acknowledged (PagerDuty).
type Caps struct{ Edit, Thread, Ack bool }

func capsOf(mode string) Caps {
	switch mode {
	case ModeWebAPI:
		return Caps{Edit: true, Thread: true}
	case ModePagerDuty:
		return Caps{Ack: true}
	}
	return Caps{}
}

// Step kinds.
const (
	StepRoot   = "root"
	StepUpdate = "update"
	StepReply  = "reply"
)

// Step is the next thing to send for a lane.
type Step struct {
	Kind string
	// Key is the transition the ledger records the step under; Snap is the
	// state the message shows.
	Key  string
	Snap Snapshot
	// Cause is the incident event the step comes from.
	Cause string
	// Ack is the incident's acknowledgement when the step is chosen (nil:
	// none, or one after the resolve): the root shows it, and an
	// escalation reply is not broadcast (ack.go).
	Ack *Ack
	// Due is when a reminder was due (reminders.go).
	Due time.Time
	// list is a shared root's incidents; inGroup marks a reply in a shared
	// root's thread, which names its incident (group.go).
	list    *groupList
	inGroup bool
}

// Next returns a lane's next step, or nil when it is up to date. Order per
// lane: the root message first; then (where the sink can edit) one edit to
// the latest routed state, however many transitions arrived meanwhile; then
// one reply per transition, oldest first. A resolve is the last transition,
// so it is never coalesced away.
func (s *State) Next(l *Lane, sinkCaps Caps) *Step {
	return s.withGroup(l, s.withAck(s.next(l, sinkCaps)))
}

func (s *State) next(l *Lane, sinkCaps Caps) *Step {
	i := s.Timelines[l.Incident]
	if i == nil {
		return nil
	}
	if st, ok := s.groupNext(l, i); ok {
		return st
	}
	caps := sinkCaps
	if l.Rooted {
		caps = capsOf(l.Mode)
		if l.RootTS == "" {
			caps.Edit, caps.Thread = false, false
		}
	}
	if !l.Rooted {
		if l.Target <= l.RootFailedAt {
			return nil
		}
		t := i.At(l.Target)
		if !caps.Edit && l.RootFailedAt < 0 {
			t = i.At(l.Join) // one message per transition: the first tells the opening
		}
		return &Step{Kind: StepRoot, Key: l.JoinKey, Snap: t.Snapshot, Cause: t.EventID}
	}
	if caps.Ack {
		if st := s.nextAck(l, i); st != nil {
			return st
		}
	}
	if caps.Edit && l.Rendered < l.Target {
		t := i.At(l.Target)
		if t.Ordinal > l.Rendered {
			return &Step{Kind: StepUpdate, Key: t.Transition, Snap: t.Snapshot, Cause: t.EventID}
		}
	}
	if caps.Edit {
		if st := s.ackEdit(l, i); st != nil {
			return st
		}
	}
	return s.nextReply(l, i)
}

// NextReply is a lane's next thread reply, whatever edit is pending: what
// goes first while the workspace's edit budget is spent, so that a
// resolve's reply does not wait for the root's edit.
func (s *State) NextReply(l *Lane) *Step {
	i := s.Timelines[l.Incident]
	if i == nil || !l.Rooted {
		return nil
	}
	if s.inGroup(l) {
		return s.withAck(s.groupReply(l, i))
	}
	return s.withAck(s.nextReply(l, i))
}

func (s *State) nextReply(l *Lane, i *Timeline) *Step {
	for _, t := range i.Transitions {
		if t.Ordinal > l.Replied && t.Ordinal <= l.Target && !s.Suppressed(l.Incident, t.Transition, l.Dest) {
			return &Step{Kind: StepReply, Key: t.Transition, Snap: t.Snapshot, Cause: t.EventID}
		}
	}
	return nil
}
