package event

import "time"

// SilenceMatcher selects incidents by one of their labels: rule, app,
// provider, route, integration or severity. The value is compared exactly,
// or, with IsRegex, as a regular expression anchored at both ends (as
// Alertmanager's matchers are).
type SilenceMatcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex,omitempty"`
}

// RecurringWindow is a maintenance window that repeats every week: on the
// days given, from Start (HH:MM) for Duration, in TimeZone.
type RecurringWindow struct {
	Days     []string `json:"days"`
	Start    string   `json:"start"`
	Duration string   `json:"duration"`
	TimeZone string   `json:"timeZone"`
}

// SilenceCreated: an operator silenced the incidents matching every
// matcher, from StartsAt to EndsAt (or, with Recurring, in each of its
// windows between them). The notifier holds their notifications.
type SilenceCreated struct {
	SilenceID string           `json:"silenceId"`
	Matchers  []SilenceMatcher `json:"matchers"`
	StartsAt  time.Time        `json:"startsAt"`
	// EndsAt is zero for a recurring window without an end.
	EndsAt    time.Time        `json:"endsAt,omitzero"`
	Recurring *RecurringWindow `json:"recurring,omitempty"`
	CreatedBy string           `json:"createdBy"`
	Comment   string           `json:"comment,omitempty"`
	Via       string           `json:"via"`
}

// SilenceExpired: a silence was ended before its end (At).
type SilenceExpired struct {
	SilenceID string    `json:"silenceId"`
	By        string    `json:"by,omitempty"`
	Via       string    `json:"via"`
	At        time.Time `json:"at"`
}

// NotificationSuppressed: a transition was not sent to a destination
// because a silence held it (recorded, never dropped silently).
type NotificationSuppressed struct {
	IncidentID  string `json:"incidentId"`
	Transition  string `json:"transition"`
	Destination string `json:"destination"`
	SilenceID   string `json:"silenceId"`
}

func (SilenceCreated) EventType() Type         { return "silence_created" }
func (SilenceExpired) EventType() Type         { return "silence_expired" }
func (NotificationSuppressed) EventType() Type { return "notification_suppressed" }
