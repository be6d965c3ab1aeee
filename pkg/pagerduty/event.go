package pagerduty

import (
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"
)

// DefaultURL is the Events API v2 endpoint.
const DefaultURL = "https://events.pagerduty.com/v2/enqueue"

// Event actions.
const (
	Trigger     = "trigger"
	Acknowledge = "acknowledge"
	Resolve     = "resolve"
)

// Severities, PagerDuty's four.
const (
	SeverityCritical = "critical"
	SeverityError    = "error"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Limits PagerDuty documents for an event.
const (
	MaxDedupKey = 255
	MaxSummary  = 1024
	KeyLength   = 32 // an integration (routing) key
)

// Event is one Events API v2 event. Acknowledge and resolve need only the
// routing key, the action and the dedup_key; a trigger needs a payload.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"`
	DedupKey    string   `json:"dedup_key,omitempty"`
	Payload     *Payload `json:"payload,omitempty"`
	Client      string   `json:"client,omitempty"`
	ClientURL   string   `json:"client_url,omitempty"`
	Links       []Link   `json:"links,omitempty"`
	Images      []Image  `json:"images,omitempty"`
}

// Payload is a trigger's description of the problem.
type Payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     *time.Time     `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// Link is a link shown with the alert.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// Image is an image shown with the alert.
type Image struct {
	Src  string `json:"src"`
	Href string `json:"href,omitempty"`
	Alt  string `json:"alt,omitempty"`
}

// Response is PagerDuty's answer: 202 {"status":"success","message":"Event
// processed","dedup_key":…}, or 400 {"status":"invalid event","message":…,
// "errors":[…]}.
type Response struct {
	Status   string   `json:"status"`
	Message  string   `json:"message"`
	DedupKey string   `json:"dedup_key,omitempty"`
	Errors   []string `json:"errors,omitempty"`
}

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9]{32}$`)

// CheckRoutingKey checks the form of an integration key: 32 letters and
// digits. The error never contains the key.
func CheckRoutingKey(k string) error {
	if !keyPattern.MatchString(k) {
		return fmt.Errorf("a routing key is %d letters and digits (got %d characters)", KeyLength, len(k))
	}
	return nil
}

// ValidSeverity reports whether s is one of PagerDuty's severities.
func ValidSeverity(s string) bool {
	switch s {
	case SeverityCritical, SeverityError, SeverityWarning, SeverityInfo:
		return true
	}
	return false
}

// Validate checks an event as PagerDuty does, and returns every problem
// (the errors of a 400 answer).
func (e *Event) Validate() []string {
	var errs []string
	if CheckRoutingKey(e.RoutingKey) != nil {
		errs = append(errs, "'routing_key' must be a 32 character string")
	}
	switch e.EventAction {
	case Trigger:
	case Acknowledge, Resolve:
		if e.DedupKey == "" {
			errs = append(errs, "'dedup_key' is required for "+e.EventAction+" events")
		}
	default:
		errs = append(errs, "'event_action' must be one of trigger, acknowledge, resolve")
	}
	if utf8.RuneCountInString(e.DedupKey) > MaxDedupKey {
		errs = append(errs, "'dedup_key' must be at most 255 characters")
	}
	if e.EventAction == Trigger {
		errs = append(errs, e.Payload.validate()...)
	}
	return errs
}

func (p *Payload) validate() []string {
	if p == nil {
		return []string{"'payload' is missing or blank"}
	}
	var errs []string
	if p.Summary == "" {
		errs = append(errs, "'payload.summary' is missing or blank")
	}
	if utf8.RuneCountInString(p.Summary) > MaxSummary {
		errs = append(errs, "'payload.summary' must be at most 1024 characters")
	}
	if p.Source == "" {
		errs = append(errs, "'payload.source' is missing or blank")
	}
	if !ValidSeverity(p.Severity) {
		errs = append(errs, "'payload.severity' must be one of critical, error, warning, info")
	}
	return errs
}

// errInvalid is what Send reports for an event it refuses to send.
var errInvalid = errors.New("invalid event")
