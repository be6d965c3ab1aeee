package event

import "time"

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
	// Destination is the routed destination ("#ops", "C0123…",
	// "incoming:ops", "console"); Channel is the id Slack answered with.
	Destination string `json:"destination,omitempty"`
	// Action is "root" (the incident's message) or "reply" (a transition's
	// thread reply, or a new message where the sink cannot thread).
	Action string `json:"action,omitempty"`
	// State is the transition whose state a root message shows.
	State     string `json:"state,omitempty"`
	Broadcast bool   `json:"broadcast,omitempty"`
	// Adopted: found in Slack by its metadata after an attempt in doubt,
	// rather than answered to this attempt.
	Adopted bool `json:"adopted,omitempty"`
}

// SlackPostAttempted: a Web API post is about to be attempted. Written once
// per step before its first attempt, it marks the step in doubt until its
// slack_message_posted entry: the next attempt first looks for the message
// in Slack by its metadata (Step) and adopts it instead of posting twice.
type SlackPostAttempted struct {
	IncidentID  string `json:"incidentId"`
	Transition  string `json:"transition"`
	Destination string `json:"destination"`
	Action      string `json:"action"`
	Step        string `json:"step"`
	Channel     string `json:"channel,omitempty"`
	ThreadTS    string `json:"threadTs,omitempty"`
}

// SlackMessageDeleted: a duplicate of a step's message was deleted.
type SlackMessageDeleted struct {
	IncidentID  string `json:"incidentId"`
	Transition  string `json:"transition"`
	Destination string `json:"destination"`
	Action      string `json:"action"`
	Channel     string `json:"channel"`
	TS          string `json:"ts"`
	Kept        string `json:"kept,omitempty"`
	Reason      string `json:"reason"`
}

// SlackMessageUpdated: an incident's root message was edited in place.
type SlackMessageUpdated struct {
	IncidentID  string `json:"incidentId"`
	Transition  string `json:"transition"`
	Channel     string `json:"channel"`
	TS          string `json:"ts"`
	Destination string `json:"destination,omitempty"`
}

// RouteMatch says why a destination receives an incident.
type RouteMatch struct {
	Destination string `json:"destination"`
	By          string `json:"by"`
}

// NotificationRouted: the notifier decided where an incident transition
// goes. Written once per transition before anything is sent, it fixes the
// destinations for good: a restart or a rebuild resumes the same deliveries
// whatever the routing configuration says by then.
type NotificationRouted struct {
	IncidentID   string       `json:"incidentId"`
	Transition   string       `json:"transition"`
	Destinations []string     `json:"destinations"`
	Matches      []RouteMatch `json:"matches,omitempty"`
	// Groups are the grouping decisions of the destinations that join now
	// (notifier groupWait): destination → the incident whose root message
	// the incident shares there (itself: it leads the group).
	Groups map[string]string `json:"groups,omitempty"`
}

// NotificationFailed: a post or an edit failed for good (Slack refused it
// with a code no retry can fix); the transition is not retried there.
type NotificationFailed struct {
	IncidentID  string `json:"incidentId"`
	Transition  string `json:"transition"`
	Destination string `json:"destination"`
	Action      string `json:"action"`
	Mode        string `json:"mode"`
	Error       string `json:"error"`
	Status      int    `json:"status,omitempty"`
	Detail      string `json:"detail,omitempty"`
}

// SubscriptionMatch selects incidents; empty fields match anything.
type SubscriptionMatch struct {
	Severity    string `json:"severity,omitempty"`
	App         string `json:"app,omitempty"`
	Provider    string `json:"provider,omitempty"`
	Route       string `json:"route,omitempty"`
	Integration string `json:"integration,omitempty"`
	Rule        string `json:"rule,omitempty"`
}

// SubscriptionCreated: a channel subscribed to the incidents matching a filter.
type SubscriptionCreated struct {
	SubscriptionID string            `json:"subscriptionId"`
	Channel        string            `json:"channel"`
	Match          SubscriptionMatch `json:"match"`
	Via            string            `json:"via"`
	By             string            `json:"by,omitempty"`
}

// SubscriptionRemoved: a channel's subscription ended.
type SubscriptionRemoved struct {
	SubscriptionID string `json:"subscriptionId"`
	Channel        string `json:"channel"`
	Via            string `json:"via"`
	By             string `json:"by,omitempty"`
}

func (SlackMessagePosted) EventType() Type  { return "slack_message_posted" }
func (SlackMessageUpdated) EventType() Type { return "slack_message_updated" }
func (NotificationRouted) EventType() Type  { return "notification_routed" }
func (SlackPostAttempted) EventType() Type  { return "slack_post_attempted" }
func (SlackMessageDeleted) EventType() Type { return "slack_message_deleted" }
func (NotificationFailed) EventType() Type  { return "notification_failed" }
func (SubscriptionCreated) EventType() Type { return "subscription_created" }
func (SubscriptionRemoved) EventType() Type { return "subscription_removed" }

// IncidentAcknowledged: a responder took an incident on (a Slack button,
// the API or the CLI). Reminders and escalation broadcasts stop for it;
// PagerDuty is told. An acknowledgement that arrives after the incident
// resolved is recorded and changes nothing: resolved wins.
type IncidentAcknowledged struct {
	IncidentID string `json:"incidentId"`
	// By is who acknowledged: a Slack user id, or the API caller's name.
	By  string    `json:"by"`
	Via string    `json:"via"`
	At  time.Time `json:"at"`
	// Channel and MessageTS are the Slack message the button was on.
	Channel   string `json:"channel,omitempty"`
	MessageTS string `json:"messageTs,omitempty"`
}

func (IncidentAcknowledged) EventType() Type { return "incident_acknowledged" }

// PagerDutyEventSent: PagerDuty's Events API v2 accepted (202) an event
// about an incident: a trigger (its opening, or a change of severity), an
// acknowledge or a resolve. Written right after the answer, once per step,
// so that a restart or a rebuild never sends it again.
type PagerDutyEventSent struct {
	IncidentID string `json:"incidentId"`
	// Transition is the incident transition the event tells, or
	// "acknowledged".
	Transition  string `json:"transition"`
	Destination string `json:"destination"`
	// Step is the notifier's step: root (the incident's first event
	// there), reply (a later transition) or acknowledge.
	Step        string `json:"step"`
	EventAction string `json:"eventAction"`
	DedupKey    string `json:"dedupKey"`
	// Severity is PagerDuty's severity of a trigger.
	Severity string `json:"severity,omitempty"`
}

func (PagerDutyEventSent) EventType() Type { return "pagerduty_event_sent" }
