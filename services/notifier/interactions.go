package notifier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/slack"
)

// The root message's buttons and Slack's interaction requests. Slack sends
// a click to the app's interactivity request URL (POST
// /v1/slack/interactions): a form whose payload field is a block_actions
// JSON document, signed as slash commands are. Slack wants a 200 within
// 3 seconds and shows the user an error otherwise.

// Action ids of the root message's buttons.
const (
	actionAck     = "herald_ack"
	actionSilence = "herald_silence_1h"
	actionOpen    = "herald_open"
)

// silenceFor is how long the "Silence 1 h" button silences an incident.
const silenceFor = time.Hour

// incidentSilencer silences an incident's notifications for a while (the
// silences of issue 11 item 1 fill it in); without one the root has no
// "Silence 1 h" button.
type incidentSilencer interface {
	SilenceIncident(ctx context.Context, incidentID, by string, d time.Duration) error
}

// rootDecor is what a Web API root shows besides the incident: its buttons.
type rootDecor struct {
	publicURL string
	silence   bool
}

// incidentURL is the API's view of an incident ("" without a public URL).
func (d rootDecor) incidentURL(id string) string {
	if d.publicURL == "" {
		return ""
	}
	return strings.TrimRight(d.publicURL, "/") + "/v1/incidents/" + id
}

// rootMessageBlocks is a root message: the incident, who acknowledged it,
// and (decor non-nil: a Web API message) its buttons, while there is
// something to do about it.
func rootMessageBlocks(st *Step, decor *rootDecor) []slack.Block {
	s := st.Snap
	blocks := RootBlocks(s)
	// Before the context line, which stays last.
	tail := blocks[len(blocks)-1]
	blocks = blocks[:len(blocks)-1]
	if st.Ack != nil {
		blocks = append(blocks, slack.Section(ackLine(st.Ack)))
	}
	if decor != nil {
		var buttons []slack.Button
		if s.State == event.StateOpen && st.Ack == nil {
			buttons = append(buttons, slack.Button{Text: "Acknowledge", ActionID: actionAck, Value: s.IncidentID, Style: "primary"})
			if decor.silence {
				buttons = append(buttons, slack.Button{Text: "Silence 1 h", ActionID: actionSilence, Value: s.IncidentID})
			}
		}
		if u := decor.incidentURL(s.IncidentID); u != "" {
			buttons = append(buttons, slack.Button{Text: "Open in Herald", ActionID: actionOpen, URL: u})
		}
		if len(buttons) > 0 {
			blocks = append(blocks, slack.Actions("herald_incident", buttons...))
		}
	}
	return slack.Limit(append(blocks, tail))
}

// ackLine says who acknowledged and when: a Slack user as a mention.
func ackLine(a *Ack) string {
	return "✋ Acknowledged by " + who(a) + " at " + slackDate(a.At)
}

func who(a *Ack) string {
	if a.Via == "slack" {
		return "<@" + escape(a.By) + ">"
	}
	return escape(a.By) + " (" + a.Via + ")"
}

// slackInteraction serves Slack's interaction requests. A request whose
// signature is missing, wrong or older than 5 minutes gets 401 and changes
// nothing; one Herald cannot record gets 503 (Slack tells the user it
// failed); anything else gets 200.
func (n *Notifier) slackInteraction(w http.ResponseWriter, r *http.Request, maxBody int64) {
	body, ok := n.verifiedSlackBody(w, r, maxBody, "interaction")
	if !ok {
		return
	}
	in, err := slack.ParseInteraction(body)
	if err != nil {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, "invalid_payload", "%v", err))
		return
	}
	if in.Type != "block_actions" {
		w.WriteHeader(http.StatusOK)
		return
	}
	for _, a := range in.Actions {
		if err := n.runAction(r.Context(), in, a); err != nil {
			var ae *api.Error
			if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
				n.log.Warn("Slack button for an incident the notifier does not know", "action", a.ActionID, "incident", a.Value)
				continue
			}
			n.log.Error("Slack button not recorded", "action", a.ActionID, "incident", a.Value, "user", in.User.ID, "error", err)
			api.WriteError(w, err)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// runAction runs one button's action; link buttons and unknown ones do nothing.
func (n *Notifier) runAction(ctx context.Context, in slack.Interaction, a slack.Action) error {
	switch groupAckAction(a.ActionID) {
	case actionAck:
		ack := event.IncidentAcknowledged{IncidentID: a.Value, By: in.User.ID, Via: "slack", At: n.now().UTC(),
			Channel: in.Channel.ID, MessageTS: in.Container.MessageTS}
		if ack.By == "" {
			return api.Errorf(http.StatusBadRequest, "invalid_payload", "the interaction names no user")
		}
		if !tsPattern.MatchString(ack.MessageTS) {
			ack.MessageTS = ""
		}
		if len(ack.Channel) > 80 {
			ack.Channel = ""
		}
		_, err := n.Acknowledge(ctx, ack)
		return err
	case actionSilence:
		if n.silencer == nil {
			return nil
		}
		if err := n.silencer.SilenceIncident(ctx, a.Value, in.User.ID, silenceFor); err != nil {
			return fmt.Errorf("silence %s: %w", a.Value, err)
		}
	}
	return nil
}

// verifiedSlackBody reads a request from Slack and checks its signature:
// it answers the request itself (and false) when it is refused.
func (n *Notifier) verifiedSlackBody(w http.ResponseWriter, r *http.Request, maxBody int64, what string) ([]byte, bool) {
	secret := n.cfg.Slack.SigningSecret
	if secret == "" {
		api.WriteError(w, api.Errorf(http.StatusForbidden, strings.ReplaceAll(what, " ", "_")+"s_disabled",
			"set notifier.slack.signingSecret (or HERALD_SLACK_SIGNING_SECRET) to accept Slack %ss", what))
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || int64(len(body)) > maxBody {
		api.WriteError(w, api.Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "the body exceeds %d bytes", maxBody))
		return nil, false
	}
	if err := slack.Verify(secret, r.Header, body, n.now()); err != nil {
		code := "invalid_signature"
		if errors.Is(err, slack.ErrStale) {
			code = "stale_request"
		}
		n.log.Warn("Slack "+what+" refused", "reason", code)
		api.WriteError(w, api.Errorf(http.StatusUnauthorized, code, "%v", err))
		return nil, false
	}
	return body, true
}
