package notifier

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/slack"
)

// The crash window (docs/notifier.md, "The duplicate window"). A Web API
// post is preceded by a slack_post_attempted entry and carries its step id
// in Slack metadata. A step attempted but not recorded as posted is in
// doubt: Slack may have the message (a crash after its answer, an answer
// lost to a timeout or a 5xx). Before posting it again the notifier looks
// for it in the channel's history (conversations.history, or .replies for a
// thread reply, from a little before the attempt) and adopts what it finds:
// the ledger entry is written from the message found. Extra copies found on
// the way are deleted (chat.delete) and recorded (slack_message_deleted).

// lookupSkew is how much earlier than the attempt, by the notifier's clock,
// Slack's ts of the message may be, by Slack's.
const lookupSkew = 2 * time.Minute

// lookupPage is the page size of a look-up (Slack recommends at most 200),
// and lookupPages how many pages one reads at most: a step in doubt for
// long in a busy channel is looked for among its latest 2,000 messages.
const (
	lookupPage  = 200
	lookupPages = 10
)

var channelIDPattern = regexp.MustCompile(`^[CGD][A-Z0-9]{2,20}$`)

// channelOf is the channel id of a lane's messages, when known: the root's,
// the destination itself, or what Slack answered for another incident in
// the same destination.
func (s *State) channelOf(l *Lane) string {
	if l.RootChannel != "" {
		return l.RootChannel
	}
	if channelIDPattern.MatchString(l.Dest) {
		return l.Dest
	}
	for _, o := range s.byDest(l.Dest) {
		if o.RootChannel != "" && o.Mode == ModeWebAPI {
			return o.RootChannel
		}
	}
	return ""
}

func (s *State) byDest(dst string) []*Lane {
	var out []*Lane
	for k, l := range s.Lanes {
		if k.dest == dst {
			out = append(out, l)
		}
	}
	return out
}

// slackTS renders a time as a Slack ts.
func slackTS(t time.Time) string { return fmt.Sprintf("%d.%06d", t.Unix(), t.Nanosecond()/1000) }

// tsLess orders Slack timestamps ("seconds.micros") as numbers.
func tsLess(a, b string) bool {
	x, _ := strconv.ParseFloat(a, 64)
	y, _ := strconv.ParseFloat(b, 64)
	return x < y
}

// errStopping: the notifier stops (or crashed in a test) in the middle of a step.
var errStopping = errors.New("notifier: stopping")

// attempt prepares a Web API post with the crash window closed
// (doubtStage): the attempt is recorded first, and a step in doubt is
// looked up before it is posted again. It answers the attempt, and what
// Slack has for the step when the look-up found it (or why it failed):
// then nothing is to be posted.
func (n *Notifier) attempt(ctx context.Context, l *Lane, st *Step, s *laneSched) (*attempt, *Sent, error) {
	id := stepID(l, st)
	n.mu.Lock()
	at, attempted := l.Attempts[attemptKey(st.Kind, st.Key)]
	ch := n.state.channelOf(l)
	rootTS := l.RootTS
	n.mu.Unlock()
	inDoubt := attempted && !s.refused[id]
	if !attempted {
		a := event.SlackPostAttempted{IncidentID: l.Incident, Transition: st.Key, Destination: l.Dest, Action: st.Kind,
			Step: id, Channel: ch}
		if st.Kind == StepReply {
			a.ThreadTS = rootTS
		}
		stored, err := n.writeOnce(n.hardCtx, ledgerEvent(a, ledgerSubject("slack_post_attempted", l.Incident, st.Key, l.Dest, st.Kind), st.Cause))
		if err != nil {
			n.log.Error("attempt not recorded; not posting", "step", id, "error", err)
			return nil, nil, errStopping
		}
		n.apply(stored)
		at = stored.Time
	}
	a := &attempt{id: id, at: at}
	if !inDoubt {
		return a, nil, nil
	}
	if ch == "" {
		// A #name never answered with its id yet: nowhere to look.
		a.unchecked = true
		n.log.Warn("step in doubt in a channel whose id is not known yet: posting, then removing any duplicate",
			"step", id)
		return a, nil, nil
	}
	found, err := n.lookup(ctx, l, st, id, ch, rootTS, at, "")
	var se *slack.Error
	switch {
	case err == nil:
		return a, found, nil
	case errors.As(err, &se) && se.Code == "missing_scope":
		n.log.Warn("cannot read the channel's history (the bot needs channels:history / groups:history): "+
			"posting a step in doubt, a duplicate is possible", "step", id, "error", err)
		return a, nil, nil
	}
	return a, nil, err
}

// lookup looks for a step's message in Slack, after the attempt (less the
// skew). It keeps the oldest copy (or keep, when given), deletes the others,
// and answers the one kept (nil: none).
func (n *Notifier) lookup(ctx context.Context, l *Lane, st *Step, id, ch, rootTS string, at time.Time, keep string) (*Sent, error) {
	q := slack.HistoryQuery{Channel: ch, Oldest: slackTS(at.Add(-lookupSkew)), Limit: lookupPage}
	method := methodHistory
	if st.Kind == StepReply {
		q.Thread, method = rootTS, methodReplies
	}
	var found []slack.HistoryMessage
	for range lookupPages {
		if err := n.pace[method].wait(ctx); err != nil {
			return nil, errStopping
		}
		p, err := n.slack.History(context.WithoutCancel(ctx), q)
		if err != nil {
			return nil, err
		}
		for _, m := range p.Messages {
			if m.Metadata != nil && m.Metadata.EventType == metaEventType && m.Metadata.EventPayload["step"] == id {
				found = append(found, m)
			}
		}
		if q.Cursor = p.NextCursor(); q.Cursor == "" {
			break
		}
	}
	if len(found) == 0 {
		return nil, nil
	}
	sort.Slice(found, func(a, b int) bool { return tsLess(found[a].TS, found[b].TS) })
	kept := found[0]
	if keep != "" {
		kept = slack.HistoryMessage{TS: keep}
	}
	for _, m := range found {
		if m.TS != kept.TS {
			n.deleteDuplicate(ctx, l, st, ch, m.TS, kept.TS)
		}
	}
	state := st.Snap.Transition
	if kept.Metadata != nil {
		if v, ok := kept.Metadata.EventPayload["state"].(string); ok && v != "" {
			state = v
		}
	}
	n.log.Info("step in doubt found in Slack: adopted, not posted again", "step", id, "ts", kept.TS, "copies", len(found))
	return &Sent{Channel: ch, TS: kept.TS, Broadcast: st.Kind == StepReply && broadcast(st), Adopted: true, State: state}, nil
}

// repair removes copies of a step posted before its recorded message: a
// step that was in doubt where it could not be looked up first.
func (n *Notifier) repair(ctx context.Context, l *Lane, st *Step, sent Sent, at time.Time) {
	n.mu.Lock()
	rootTS := l.RootTS
	n.mu.Unlock()
	if st.Kind == StepRoot {
		rootTS = ""
	}
	if _, err := n.lookup(ctx, l, st, stepID(l, st), sent.Channel, rootTS, at, sent.TS); err != nil {
		n.log.Warn("could not look for duplicates of a step posted in doubt", "step", stepID(l, st), "error", err)
	}
}

// deleteDuplicate deletes one extra copy of a step's message and records it.
func (n *Notifier) deleteDuplicate(ctx context.Context, l *Lane, st *Step, ch, ts, kept string) {
	if err := n.pace[methodDelete].wait(ctx); err != nil {
		return
	}
	err := n.slack.DeleteMessage(context.WithoutCancel(ctx), ch, ts)
	var se *slack.Error
	if err != nil && !(errors.As(err, &se) && se.Code == "message_not_found") {
		n.log.Warn("could not delete a duplicate message", "step", stepID(l, st), "ts", ts, "error", err)
		return
	}
	d := event.SlackMessageDeleted{IncidentID: l.Incident, Transition: st.Key, Destination: l.Dest, Action: st.Kind,
		Channel: ch, TS: ts, Kept: kept, Reason: "duplicate"}
	subj := ledgerSubject("slack_message_deleted", l.Incident, st.Key, l.Dest, st.Kind, strings.ReplaceAll(ts, ".", "_"))
	stored, err := n.writeOnce(n.hardCtx, ledgerEvent(d, subj, st.Cause))
	if err != nil {
		n.log.Error("slack_message_deleted not written", "subject", subj, "error", err)
		return
	}
	n.apply(stored)
	n.log.Warn("deleted a duplicate message", "step", stepID(l, st), "ts", ts, "kept", kept)
}
