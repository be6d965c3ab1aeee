package event

// The notifier's ledger: every side effect on Slack is recorded, and checked
// before acting, so a restart or a rebuild never posts twice.

// SlackMessagePosted: a message (an incident's root or a thread reply) was posted.
type SlackMessagePosted struct {
	IncidentID string `json:"incidentId"`
	Transition string `json:"transition"`
	Channel    string `json:"channel"`
	TS         string `json:"ts"`
	ThreadTS   string `json:"threadTs,omitempty"`
	Mode       string `json:"mode"`
}

// SlackMessageUpdated: an incident's root message was edited in place.
type SlackMessageUpdated struct {
	IncidentID string `json:"incidentId"`
	Transition string `json:"transition"`
	Channel    string `json:"channel"`
	TS         string `json:"ts"`
}

func (SlackMessagePosted) EventType() Type  { return "slack_message_posted" }
func (SlackMessageUpdated) EventType() Type { return "slack_message_updated" }
