package notifier

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/event"
)

// Acknowledgement. A responder takes an incident on from its Slack message
// (the Acknowledge button, interactions.go) or the API (POST
// /v1/incidents/{id}/ack). The notifier records it once per incident in its
// ledger (incident_acknowledged on a write-once subject: the first ack
// stands, a second one answers the first), edits the root messages to say
// who and when, and stops the incident's reminders and escalation
// broadcasts.
//
// Resolved wins (Grafana OnCall #3161, where an ack that arrived after the
// resolve re-opened the alert, is the bug avoided): an acknowledgement is
// effective only when the ledger has not routed the incident's resolve
// before it. One recorded after the resolve is kept, and changes nothing.
// The order is the ledger's own, so a rebuild decides the same: the
// acknowledgement and the routing entries are written one at a time
// (Notifier.logMu) and folded in the order they were written.

// ackKey is the transition key of the root edit that shows an acknowledgement.
const ackKey = "acknowledged"

// Ack is an incident's acknowledgement as the notifier folded it.
type Ack struct {
	By        string    `json:"by"`
	Via       string    `json:"via"`
	At        time.Time `json:"at"`
	Channel   string    `json:"channel,omitempty"`
	MessageTS string    `json:"messageTs,omitempty"`
	// Effective: recorded before the incident's resolve was. One recorded
	// after it changes nothing.
	Effective bool `json:"effective"`
	// Recorded is when the ledger entry was written.
	Recorded time.Time `json:"recordedAt"`
}

// applyAck folds an incident_acknowledged entry: the first one stands.
func (s *State) applyAck(d event.IncidentAcknowledged, recorded time.Time) {
	if s.Acks[d.IncidentID] != nil {
		return
	}
	resolved := false
	for key := range s.Routed[d.IncidentID] {
		resolved = resolved || strings.HasPrefix(key, "resolved")
	}
	s.Acks[d.IncidentID] = &Ack{By: d.By, Via: d.Via, At: d.At, Channel: d.Channel, MessageTS: d.MessageTS,
		Effective: !resolved, Recorded: recorded}
}

// effectiveAck is an incident's acknowledgement if it counts (nil otherwise).
func (s *State) effectiveAck(incident string) *Ack {
	if a := s.Acks[incident]; a != nil && a.Effective {
		return a
	}
	return nil
}

// withAck gives a step the incident's acknowledgement.
func (s *State) withAck(st *Step) *Step {
	if st != nil {
		st.Ack = s.effectiveAck(st.Snap.IncidentID)
	}
	return st
}

// ackEdit is the root edit that shows an effective acknowledgement, once
// per lane, rendering the state the root shows.
func (s *State) ackEdit(l *Lane, i *Timeline) *Step {
	if l.AckShown || l.Rendered < 0 || s.effectiveAck(l.Incident) == nil {
		return nil
	}
	t := i.At(l.Rendered)
	return &Step{Kind: StepUpdate, Key: ackKey, Snap: t.Snapshot, Cause: t.EventID}
}

// AckResult is what an acknowledgement request answers.
type AckResult struct {
	IncidentID string              `json:"incidentId"`
	Status     event.IncidentState `json:"status"`
	// Acknowledgement is the incident's (first) acknowledgement.
	Acknowledgement *Ack `json:"acknowledgement"`
	// Created: this request recorded it (false: an earlier one stands).
	Created bool `json:"created"`
}

// Acknowledge records an incident's acknowledgement, once: a second one
// answers the first. An unknown incident is a 404.
func (n *Notifier) Acknowledge(ctx context.Context, a event.IncidentAcknowledged) (AckResult, error) {
	if !n.Active() {
		return AckResult{}, api.Errorf(http.StatusServiceUnavailable, "standby",
			"this notifier is a standby; the active one records acknowledgements, try again")
	}
	n.logMu.Lock()
	defer n.logMu.Unlock()
	res, cause, known := n.ackResult(a.IncidentID)
	switch {
	case !known:
		return res, api.Errorf(http.StatusNotFound, "unknown_incident", "the notifier knows no incident %q", a.IncidentID)
	case res.Acknowledgement != nil:
		return res, nil
	}
	e := ledgerEvent(a, "notifications.incident_acknowledged."+a.IncidentID, cause)
	wctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	stored, err := n.writeOnce(wctx, e)
	if err != nil {
		return res, &api.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Detail: fmt.Sprintf("the event log did not record the acknowledgement (%v); try again", err)}
	}
	n.apply(stored)
	res, _, _ = n.ackResult(a.IncidentID)
	res.Created = stored == e // not one written meanwhile (by a predecessor)
	n.mu.Lock()
	lanes := append([]*Lane(nil), n.state.LanesOf(a.IncidentID)...)
	n.mu.Unlock()
	for _, l := range lanes {
		n.kick(l) // the roots' edits
	}
	n.log.Info("incident acknowledged", "incident", a.IncidentID, "by", res.Acknowledgement.By,
		"via", res.Acknowledgement.Via, "effective", res.Acknowledgement.Effective)
	return res, nil
}

// ackResult is an incident's acknowledgement state, the event id of its
// latest transition, and whether the notifier knows it.
func (n *Notifier) ackResult(id string) (AckResult, string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	tl := n.state.Timelines[id]
	if tl == nil {
		return AckResult{IncidentID: id}, "", false
	}
	res := AckResult{IncidentID: id, Status: tl.Latest().State}
	if a := n.state.Acks[id]; a != nil {
		c := *a
		res.Acknowledgement = &c
	}
	return res, tl.Latest().EventID, true
}

// postAck serves POST /v1/incidents/{id}/ack: an operator acknowledges
// an incident. The body is optional: {"by": "…"} names the responder
// (default: the operator key's name).
func (n *Notifier) postAck(w http.ResponseWriter, r *http.Request, maxBody int64) {
	var body struct {
		By string `json:"by"`
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || int64(len(raw)) > maxBody {
		api.WriteError(w, api.Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "the body exceeds %d bytes", maxBody))
		return
	}
	if len(strings.TrimSpace(string(raw))) > 0 {
		if err := api.Unmarshal(raw, &body); err != nil {
			api.WriteError(w, err)
			return
		}
	}
	by := body.By
	if by == "" {
		if c := api.CallerFrom(r.Context()); c != nil && c.Name != "" {
			by = c.Name
		} else {
			by = "operator"
		}
	}
	if len(by) > 128 {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, "invalid_by", "by: longer than 128 characters"))
		return
	}
	res, err := n.Acknowledge(r.Context(), event.IncidentAcknowledged{IncidentID: r.PathValue("id"), By: by, Via: "api",
		At: n.now().UTC()})
	if err != nil {
		api.WriteError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, res)
}
