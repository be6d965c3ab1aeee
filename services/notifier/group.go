package notifier

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/slack"
)

// Grouping (groupWait, as Alertmanager's group_wait): incidents that open
// in one Slack channel within groupWait of each other share one root
// message listing them, so a storm of N incidents is one post and a few
// edits instead of N posts at Slack's one per second per channel.
//
// The decision is a ledger entry: the notification_routed entry of the
// transition that brings an incident to a channel says which group it
// joins there (Groups: destination → the incident leading the group), so
// a restart or a rebuild groups exactly as the live notifier did.
//
// The leader's lane owns the shared root: its root waits groupWait after
// the leader opened, then lists every member; the members' lanes have no
// root of their own and reply in the shared root's thread (escalations,
// de-escalations, reminders, each naming its incident). The root is
// edited, under group-<n> keys, whenever the group changes: n is a
// version that grows with every transition routed to a member and every
// acknowledgement, so an edit recorded is never made again. Resolves are
// shown in the root only: a storm resolving is a few edits, not N replies.
// Silenced incidents are not routed to the channel, so they are not listed.

// maxGroup is how many incidents one root lists; the next one starts a
// group of its own. It keeps the message within Slack's 50 blocks.
const maxGroup = 50

// groupPrefix names the shared root's versions: group-<n>.
const groupPrefix = "group-"

func groupKey(v int) string { return groupPrefix + strconv.Itoa(v) }

// groupVersion reads a group-<n> key.
func groupVersion(key string) (int, bool) {
	n, ok := strings.CutPrefix(key, groupPrefix)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(n)
	return v, err == nil
}

// groupState is the projection's view of the groups, folded from the
// routing entries.
type groupState struct {
	// leaders are the lanes leading a group, by destination, in the order
	// the ledger decided them.
	leaders map[string][]*Lane
	// members are a leader lane's members, in the order they joined.
	members map[laneKey][]*Lane
}

func newGroupState() groupState {
	return groupState{leaders: map[string][]*Lane{}, members: map[laneKey][]*Lane{}}
}

// groupList is what a shared root shows: every incident of the group, the
// leader first, and the version it is.
type groupList struct {
	key   string
	lines []groupLine
}

type groupLine struct {
	snap Snapshot
	ack  *Ack
}

// applyGroups folds a routing entry's grouping decisions. at is when the
// entry was written: a member joining a root posted long ago is reminded
// about repeatInterval after it joined, not at once.
func (s *State) applyGroups(d event.NotificationRouted, at time.Time) {
	for _, dst := range sortedKeys(d.Groups) {
		lead := d.Groups[dst]
		l := s.Lanes[laneKey{d.IncidentID, dst}]
		if l == nil || l.Group != "" {
			continue
		}
		l.Group = lead
		if lead == l.Incident {
			s.groups.leaders[dst] = append(s.groups.leaders[dst], l)
			continue
		}
		lk := laneKey{lead, dst}
		s.groups.members[lk] = append(s.groups.members[lk], l)
		if leader := s.Lanes[lk]; leader != nil && leader.Rooted {
			shareRoot(leader, l)
			if at.After(l.LastPost) {
				l.LastPost = at
			}
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// shareRoot makes a member lane thread under its leader's root.
func shareRoot(leader, m *Lane) {
	m.Rooted, m.RootTS, m.RootChannel, m.Mode = true, leader.RootTS, leader.RootChannel, leader.Mode
	if leader.LastPost.After(m.LastPost) {
		m.LastPost = leader.LastPost
	}
}

// groupRooted folds a root posted: a shared root's group-<n> state is the
// version it shows, and its members now thread under it. It returns the
// transition key the root shows ("" for a shared root's).
func (s *State) groupRooted(l *Lane, state string) string {
	if v, ok := groupVersion(state); ok {
		l.GroupShown = max(l.GroupShown, v)
		state = ""
	}
	if l.Group == l.Incident {
		for _, m := range s.groups.members[laneKey{l.Incident, l.Dest}] {
			shareRoot(l, m)
		}
	}
	return state
}

// groupUpdated folds an edit of a shared root (false: not one).
func (s *State) groupUpdated(l *Lane, key string) bool {
	v, ok := groupVersion(key)
	if ok {
		l.GroupShown = max(l.GroupShown, v)
	}
	return ok
}

// inGroup reports whether a lane shares a root with other incidents.
func (s *State) inGroup(l *Lane) bool {
	if l.Group == "" {
		return false
	}
	return l.Group != l.Incident || len(s.groups.members[laneKey{l.Incident, l.Dest}]) > 0
}

// groupFor picks the group an incident joins in a destination when its
// transition at time at brings it there: the first group whose leader
// joined within wait of it and that has room ("" when none).
func (s *State) groupFor(dst string, at time.Time, wait time.Duration) string {
	for _, l := range s.groups.leaders[dst] {
		i := s.Timelines[l.Incident]
		if i == nil || l.RootFailedAt >= 0 || len(s.groups.members[laneKey{l.Incident, dst}])+1 >= maxGroup {
			continue
		}
		if d := at.Sub(i.At(l.Join).At); d <= wait && d >= -wait {
			return l.Incident
		}
	}
	return ""
}

// groupVersionOf is a leader lane's group version: it grows with every
// transition routed to the group's lanes and every acknowledgement of its
// incidents.
func (s *State) groupVersionOf(l *Lane) int {
	v := l.Target + 1
	if s.effectiveAck(l.Incident) != nil {
		v++
	}
	for _, m := range s.groups.members[laneKey{l.Incident, l.Dest}] {
		v += m.Target + 1
		if s.effectiveAck(m.Incident) != nil {
			v++
		}
	}
	return v
}

// groupNext is the next step of a grouped lane when grouping decides it
// (false: the lane goes as any other). A member waits for the shared root,
// then only replies; a leader with members edits the shared root when the
// group changed, then replies.
func (s *State) groupNext(l *Lane, i *Timeline) (*Step, bool) {
	if l.Group == "" {
		return nil, false
	}
	if l.Group != l.Incident {
		if !l.Rooted {
			return nil, true // kicked when the leader's root is recorded
		}
		return s.groupReply(l, i), true
	}
	if !s.inGroup(l) || !l.Rooted || l.RootTS == "" {
		return nil, false // alone, or not posted yet (withGroup lists the members in the root)
	}
	if v := s.groupVersionOf(l); l.GroupShown < v {
		t := i.At(l.Target)
		return &Step{Kind: StepUpdate, Key: groupKey(v), Snap: t.Snapshot, Cause: t.EventID}, true
	}
	return s.groupReply(l, i), true
}

// groupReply is a grouped lane's next thread reply: resolves are shown in
// the shared root only.
func (s *State) groupReply(l *Lane, i *Timeline) *Step {
	for _, t := range i.Transitions {
		if t.Ordinal > l.Replied && t.Ordinal <= l.Target && t.State != event.StateResolved &&
			!s.Suppressed(l.Incident, t.Transition, l.Dest) {
			return &Step{Kind: StepReply, Key: t.Transition, Snap: t.Snapshot, Cause: t.EventID, inGroup: true}
		}
	}
	return nil
}

// withGroup gives a leader's root or edit the group's list, when it has
// members, and marks a member's reminder as grouped.
func (s *State) withGroup(l *Lane, st *Step) *Step {
	if st == nil || !s.inGroup(l) {
		return st
	}
	if st.Kind == StepReply {
		st.inGroup = true
		return st
	}
	if l.Group != l.Incident {
		return st
	}
	g := &groupList{key: groupKey(s.groupVersionOf(l))}
	for _, x := range append([]*Lane{l}, s.groups.members[laneKey{l.Incident, l.Dest}]...) {
		if i := s.Timelines[x.Incident]; i != nil {
			g.lines = append(g.lines, groupLine{snap: i.At(x.Target).Snapshot, ack: s.effectiveAck(x.Incident)})
		}
	}
	st.list = g
	return st
}

// groupable reports whether a destination can share roots: a Slack
// channel posted to with the Web API (the others cannot edit).
func (n *Notifier) groupable(dst string) bool {
	return n.slack != nil && dst != "console" && channelPattern.MatchString(dst)
}

// groupWait is a destination's grouping wait for an incident: the longest
// of the routes that send it there (a route's own, or the notifier's); the
// notifier's for a destination only subscriptions chose.
func (n *Notifier) groupWait(dst string, s *Snapshot) time.Duration {
	ds := n.routeDurations(dst, s, n.cfg.GroupWait, func(r Route) *config.Duration { return r.GroupWait })
	return slices.Max(ds)
}

// routeDurations are a per-route setting of the routes that send an
// incident to dst (each route's own, or def), or def alone when no route
// does (subscriptions only).
func (n *Notifier) routeDurations(dst string, s *Snapshot, def config.Duration, own func(Route) *config.Duration) []time.Duration {
	var ds []time.Duration
	for _, r := range n.cfg.Routes {
		if !slices.Contains(r.Channels, dst) || !Matches(r.Match, s) {
			continue
		}
		d := def.D()
		if v := own(r); v != nil {
			d = v.D()
		}
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		ds = []time.Duration{def.D()}
	}
	return ds
}

// decideGroups decides, before the routing entry is written, which group
// an open incident joins in each channel that joins it now. The caller
// holds n.mu.
func (n *Notifier) decideGroups(t *Transition, joined []event.RouteMatch) map[string]string {
	if t.State != event.StateOpen {
		return nil
	}
	var out map[string]string
	for _, m := range joined {
		if !n.groupable(m.Destination) {
			continue
		}
		wait := n.groupWait(m.Destination, &t.Snapshot)
		if wait <= 0 {
			continue
		}
		lead := n.state.groupFor(m.Destination, t.At, wait)
		if lead == "" {
			lead = t.IncidentID
		}
		if out == nil {
			out = map[string]string{}
		}
		out[m.Destination] = lead
	}
	return out
}

// groupDue is when a leader's root may be posted: groupWait after its
// incident joined the channel (zero: now). The caller holds n.mu.
func (n *Notifier) groupDue(l *Lane, st *Step) time.Time {
	if st.Kind != StepRoot || l.Group != l.Incident {
		return time.Time{}
	}
	i := n.state.Timelines[l.Incident]
	if i == nil {
		return time.Time{}
	}
	join := i.At(l.Join)
	now := time.Now()
	due := join.At
	if due.After(now) {
		due = now // a clock ahead of ours waits no longer than groupWait
	}
	due = due.Add(n.groupWait(l.Dest, &join.Snapshot))
	if !due.After(now) {
		return time.Time{}
	}
	return due
}

// kickGroup schedules the lanes a lane's change concerns: a member's
// leader (the shared root shows it), a leader's members (they wait for its
// root).
func (n *Notifier) kickGroup(l *Lane) {
	n.mu.Lock()
	var lanes []*Lane
	switch {
	case l.Group == "":
	case l.Group != l.Incident:
		if leader := n.state.Lanes[laneKey{l.Group, l.Dest}]; leader != nil {
			lanes = append(lanes, leader)
		}
	case l.Rooted:
		lanes = append(lanes, n.state.groups.members[laneKey{l.Incident, l.Dest}]...)
	}
	n.mu.Unlock()
	for _, x := range lanes {
		n.worker(x.Dest).enqueue(x, false)
	}
}

// groupAckAction reads the action id of a shared root's Acknowledge
// buttons (herald_ack:<n>: ids are unique within a block).
func groupAckAction(id string) string {
	if strings.HasPrefix(id, actionAck+":") {
		return actionAck
	}
	return id
}

// groupBlocks renders a shared root: a numbered line per incident, and
// Acknowledge buttons numbered alike for those open and unacknowledged.
func groupBlocks(g *groupList, decor *rootDecor) []slack.Block {
	open := 0
	for _, x := range g.lines {
		if x.snap.State == event.StateOpen {
			open++
		}
	}
	blocks := []slack.Block{slack.Header(fmt.Sprintf("%s %d incidents · %d open", groupIcon(g), len(g.lines), open))}
	var text []string
	var buttons []slack.Button
	for k, x := range g.lines {
		text = append(text, groupLineText(k+1, x, decor))
		if decor != nil && x.snap.State == event.StateOpen && x.ack == nil {
			buttons = append(buttons, slack.Button{Text: fmt.Sprintf("Ack %d", k+1),
				ActionID: actionAck + ":" + strconv.Itoa(k+1), Value: x.snap.IncidentID})
		}
		if len(text) == 10 || k == len(g.lines)-1 {
			blocks = append(blocks, slack.Section(strings.Join(text, "\n")))
			text = nil
		}
	}
	for k := 0; k < len(buttons); k += slack.MaxActionElements {
		end := min(k+slack.MaxActionElements, len(buttons))
		blocks = append(blocks, slack.Actions("herald_group_"+strconv.Itoa(k/slack.MaxActionElements), buttons[k:end]...))
	}
	blocks = append(blocks, slack.Context("grouped: opened within groupWait of each other · escalations in the thread"))
	return slack.Limit(blocks)
}

func groupIcon(g *groupList) string {
	best := Snapshot{State: event.StateResolved}
	for _, x := range g.lines {
		if x.snap.State == event.StateOpen && (best.State != event.StateOpen || severityRank(x.snap.Severity) > severityRank(best.Severity)) {
			best = x.snap
		}
	}
	return severityIcon(best)
}

func groupLineText(k int, x groupLine, decor *rootDecor) string {
	s := x.snap
	line := fmt.Sprintf("%d. %s *%s* %s · %s", k, severityIcon(s), s.Severity, escape(s.Rule), escape(orNone(groupString(s.Group))))
	if s.Summary != "" {
		line += " — " + escape(s.Summary)
	}
	switch {
	case s.State == event.StateResolved:
		line += fmt.Sprintf(" · ✅ resolved after %s (peak %s)", duration(s), s.Peak)
	case x.ack != nil:
		line += " · ✋ " + who(x.ack)
	default:
		line += " · open since " + slackDate(s.OpenedAt)
	}
	if decor != nil {
		if u := decor.incidentURL(s.IncidentID); u != "" {
			line += fmt.Sprintf(" · <%s|%s>", u, s.IncidentID)
		}
	}
	return line
}

// groupFallback is a shared root's notification text.
func groupFallback(g *groupList) string {
	parts := make([]string, 0, len(g.lines))
	for _, x := range g.lines {
		parts = append(parts, Fallback(StepRoot, x.snap))
	}
	return slack.Truncate(fmt.Sprintf("%d incidents: %s", len(g.lines), strings.Join(parts, "; ")), slack.MaxFallbackText)
}

// groupReminder names the incident a reminder is about in a shared thread.
func groupReminder(st *Step, blocks []slack.Block) []slack.Block {
	if !st.inGroup {
		return blocks
	}
	s := st.Snap
	return append(blocks, slack.Context(escape(s.Rule+" · "+groupString(s.Group))+" · "+contextLine(s)))
}
