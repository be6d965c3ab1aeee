package notifier

import (
	"net/http"
	"strings"

	"github.com/heraldhq/herald/pkg/api"
)

// IncidentMessages is what the notifier did about one incident: where its
// messages are (with a Slack permalink for a Web API root) and its
// acknowledgement. The console shows it beside the incident; it is read
// from the notifier's own state, folded from its ledger.
type IncidentMessages struct {
	IncidentID      string    `json:"incidentId"`
	Acknowledgement *Ack      `json:"acknowledgement,omitempty"`
	Messages        []Message `json:"messages"`
}

// Message is one destination's root message of an incident.
type Message struct {
	Destination string `json:"destination"`
	Mode        string `json:"mode,omitempty"`
	Channel     string `json:"channel,omitempty"`
	TS          string `json:"ts,omitempty"`
	Permalink   string `json:"permalink,omitempty"`
}

// permalink is a Slack message's link: <workspace>/archives/<channel>/p<ts
// without its dot>, the form Slack's own "copy link" gives.
func permalink(workspace, channel, ts string) string {
	if channel == "" || ts == "" {
		return ""
	}
	if workspace == "" {
		workspace = "https://slack.com"
	}
	return strings.TrimRight(workspace, "/") + "/archives/" + channel + "/p" + strings.ReplaceAll(ts, ".", "")
}

// incidentMessages serves GET /v1/incidents/{id}/notifications.
func (n *Notifier) incidentMessages(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n.mu.Lock()
	_, known := n.state.Timelines[id]
	out := IncidentMessages{IncidentID: id, Messages: []Message{}}
	if a := n.state.Acks[id]; a != nil {
		c := *a
		out.Acknowledgement = &c
	}
	for _, l := range n.state.LanesOf(id) {
		if !l.Rooted {
			continue
		}
		m := Message{Destination: l.Dest, Mode: l.Mode, Channel: l.RootChannel, TS: l.RootTS}
		if l.Mode == ModeWebAPI {
			m.Permalink = permalink(n.cfg.Slack.WorkspaceURL, l.RootChannel, l.RootTS)
		}
		out.Messages = append(out.Messages, m)
	}
	n.mu.Unlock()
	if !known {
		api.WriteError(w, api.Errorf(http.StatusNotFound, "not_found", "the notifier knows no incident %q", id))
		return
	}
	api.WriteJSON(w, http.StatusOK, out)
}
