package notifier

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/slack"
)

// Sink modes, as the ledger records them.
const (
	ModeWebAPI          = "web_api"
	ModeIncomingWebhook = "incoming_webhook"
	ModeWebhook         = "webhook"
	ModeConsole         = "console"
)

// Sent is what a sink answered: the message's channel id and ts, when it
// has them.
type Sent struct {
	Channel, TS string
	Broadcast   bool
	// Adopted: found in Slack after an attempt in doubt, with the state
	// (for a root) its metadata says it shows.
	Adopted bool
	State   string
}

// Sink delivers a lane's steps to one destination.
type Sink interface {
	Mode() string
	Caps() Caps
	Send(ctx context.Context, l *Lane, st *Step) (Sent, error)
}

// broadcast: replies about a P1 are also shown in the channel, but not an
// escalation of an acknowledged incident (someone is on it), nor a reminder.
func broadcast(st *Step) bool {
	s := st.Snap
	if st.Kind != StepReply || isReminder(st) {
		return false
	}
	return s.State == event.StateResolved && s.Peak == "P1" || s.State == event.StateOpen && s.To == "P1" && st.Ack == nil
}

// metaEventType is the Slack metadata event type of Herald's messages; its
// payload names the step (stepID), so that a message whose answer was lost
// can be found in the channel's history.
const metaEventType = "herald_step"

// stepID names a step in the ledger and in Slack metadata:
// <incident>.<transition>.<destination>.<root|reply>.
func stepID(l *Lane, st *Step) string {
	return l.Incident + "." + st.Key + "." + l.Dest + "." + st.Kind
}

// message renders a step; decor (the Web API's) adds the root's buttons.
func message(l *Lane, st *Step, thread bool, decor *rootDecor) slack.Message {
	f := false
	m := slack.Message{Text: Fallback(st.Kind, st.Snap), UnfurlLinks: &f}
	switch {
	case isReminder(st):
		m.Text, m.Blocks = reminderText(st), groupReminder(st, reminderBlocks(st))
	case st.Kind == StepReply:
		m.Blocks = ReplyBlocks(st.Snap, !thread || st.inGroup)
	case st.list != nil && len(st.list.lines) > 1:
		m.Text, m.Blocks = groupFallback(st.list), groupBlocks(st.list, decor)
	default:
		m.Blocks = rootMessageBlocks(st, decor)
		if st.Ack != nil {
			m.Text = slack.Truncate(m.Text+" — acknowledged by "+st.Ack.By, slack.MaxFallbackText)
		}
	}
	m.Meta = &slack.Metadata{EventType: metaEventType, EventPayload: map[string]any{
		"step": stepID(l, st), "incident_id": st.Snap.IncidentID, "transition": st.Key, "state": st.Snap.Transition}}
	if st.list != nil {
		m.Meta.EventPayload["state"] = st.list.key // adopted after a crash: the version it shows
	}
	return m
}

// webAPI posts with a bot token: the root message, edits of it, and
// replies in its thread.
type webAPI struct {
	client *slack.Client
	dest   string
	decor  rootDecor
}

func (w *webAPI) Mode() string { return ModeWebAPI }
func (w *webAPI) Caps() Caps   { return Caps{Edit: true, Thread: true} }

func (w *webAPI) Send(ctx context.Context, l *Lane, st *Step) (Sent, error) {
	switch st.Kind {
	case StepRoot:
		m := message(l, st, false, &w.decor)
		m.Channel = w.dest
		a, err := w.client.PostMessage(ctx, m)
		return Sent{Channel: a.Channel, TS: a.TS}, err
	case StepUpdate:
		m := message(l, st, false, &w.decor)
		m.Channel, m.TS, m.Meta = l.RootChannel, l.RootTS, nil
		a, err := w.client.UpdateMessage(ctx, m)
		return Sent{Channel: a.Channel, TS: l.RootTS}, err
	}
	m := message(l, st, true, nil)
	m.Channel, m.ThreadTS, m.ReplyBroadcast = l.RootChannel, l.RootTS, broadcast(st)
	a, err := w.client.PostMessage(ctx, m)
	return Sent{Channel: a.Channel, TS: a.TS, Broadcast: m.ReplyBroadcast}, err
}

// incomingWebhook posts to a Slack incoming webhook: every step is a new
// message, because the webhook returns no reference to edit or thread on.
type incomingWebhook struct {
	hc  *http.Client
	url string
}

func (w *incomingWebhook) Mode() string { return ModeIncomingWebhook }
func (w *incomingWebhook) Caps() Caps   { return Caps{} }

func (w *incomingWebhook) Send(ctx context.Context, l *Lane, st *Step) (Sent, error) {
	return Sent{}, slack.PostWebhook(ctx, w.hc, w.url, message(l, st, false, nil))
}

// jsonWebhook posts each step as a JSON document to any HTTP endpoint.
type jsonWebhook struct {
	hc      *http.Client
	url     string
	headers map[string]string
}

func (w *jsonWebhook) Mode() string { return ModeWebhook }
func (w *jsonWebhook) Caps() Caps   { return Caps{} }

func (w *jsonWebhook) Send(ctx context.Context, _ *Lane, st *Step) (Sent, error) {
	status, h, body, err := slack.PostJSON(ctx, w.hc, w.url, webhookPayload(st), w.headers)
	if err != nil {
		return Sent{}, &slack.Error{Method: "webhook", Code: "network", Kind: slack.Transient, Err: err}
	}
	return Sent{}, slack.ErrorFromStatus("webhook", status, h, body)
}

// console prints readable lines: the default sink when Slack is not configured.
type console struct {
	mu   *sync.Mutex // shared by every console destination: whole lines
	w    io.Writer
	dest string
}

func (c *console) Mode() string { return ModeConsole }
func (c *console) Caps() Caps   { return Caps{} }

func (c *console) Send(_ context.Context, _ *Lane, st *Step) (Sent, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.w, ConsoleLine(c.dest, st)+"\n"); err != nil {
		return Sent{}, &slack.Error{Method: "console", Code: "write_failed", Kind: slack.Transient, Err: err}
	}
	return Sent{}, nil
}

// missing stands for a destination whose webhook is no longer configured:
// its steps fail for good, and say why.
type missing struct{ dest string }

func (m *missing) Mode() string { return ModeWebhook }
func (m *missing) Caps() Caps   { return Caps{} }
func (m *missing) Send(context.Context, *Lane, *Step) (Sent, error) {
	return Sent{}, &slack.Error{Method: "webhook", Code: "unknown_destination", Kind: slack.Permanent,
		Err: fmt.Errorf("%s is not configured", m.dest)}
}

// sinkFor builds the sink of a destination from the configuration.
func (n *Notifier) sinkFor(dst string) Sink {
	switch {
	case dst == "console":
		return &console{mu: &n.consoleMu, w: n.stdout, dest: dst}
	case dst == destPagerDuty:
		return n.pagerDutySink()
	case strings.HasPrefix(dst, "incoming:"):
		if u, ok := n.cfg.IncomingWebhooks[strings.TrimPrefix(dst, "incoming:")]; ok {
			return &incomingWebhook{hc: n.hc, url: u}
		}
		return &missing{dest: dst}
	case strings.HasPrefix(dst, "webhook:"):
		if w, ok := n.cfg.Webhooks[strings.TrimPrefix(dst, "webhook:")]; ok {
			return &jsonWebhook{hc: n.hc, url: w.URL, headers: w.Headers}
		}
		return &missing{dest: dst}
	case n.slack != nil:
		return &webAPI{client: n.slack, dest: dst, decor: rootDecor{publicURL: n.cfg.PublicURL, silence: n.silencer != nil}}
	}
	// A Slack channel without a bot token: say it on the console instead.
	return &console{mu: &n.consoleMu, w: n.stdout, dest: dst}
}
