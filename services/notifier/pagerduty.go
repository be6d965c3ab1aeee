package notifier

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/pagerduty"
	"github.com/heraldhq/herald/pkg/slack"
	"github.com/heraldhq/herald/streams"
)

// PagerDuty is a destination like a channel: routes name it "pagerduty",
// and its lane of an incident is one alert, the incident id its dedup_key.
// The lane's steps are the Events API v2 events: the root is the trigger
// of the transition that brought the incident there, each later transition
// a reply (a trigger with the new severity, which PagerDuty folds into the
// open alert, or the resolve), and an acknowledgement in Herald
// (incident_acknowledged) one acknowledge step. Each is recorded in the
// ledger (pagerduty_event_sent) right after PagerDuty's 202, and retried,
// refused for good or given up exactly as any other sink's step (stages.go).

// ModePagerDuty is the PagerDuty sink's mode, as the ledger records it.
const ModePagerDuty = "pagerduty"

// destPagerDuty is the destination routes write.
const destPagerDuty = "pagerduty"

// StepAck is a lane's acknowledge step; ackTransition names it in the
// ledger in place of a transition.
const (
	StepAck       = "acknowledge"
	ackTransition = "acknowledged"
)

// AckDurable is the notifier's consumer of acknowledgements in
// NOTIFICATIONS: an incident acknowledged through any process (a Slack
// button, the API, the CLI) reaches the active notifier's PagerDuty lanes.
const AckDurable = "notifier-acks"

// PagerDutyConfig is notifier.pagerduty: the Events API v2 integration the
// destination "pagerduty" sends to.
type PagerDutyConfig struct {
	// RoutingKey is the integration key (32 characters). Prefer the
	// environment, or RoutingKeyFile: the key has no place in a repository.
	RoutingKey string `yaml:"routingKey" env:"HERALD_PAGERDUTY_ROUTING_KEY"`
	// RoutingKeyFile names a file holding the key (a mounted secret).
	RoutingKeyFile string `yaml:"routingKeyFile" env:"HERALD_PAGERDUTY_ROUTING_KEY_FILE"`
	// URL is the enqueue endpoint (a fake's in tests).
	URL string `yaml:"url" env:"HERALD_PAGERDUTY_URL"`
	// SeverityMap maps Herald's severities to PagerDuty's.
	SeverityMap map[string]string `yaml:"severityMap"`
	// Source is the payload's source when the incident's group names no
	// provider or app.
	Source string `yaml:"source"`
}

func defaultPagerDuty() PagerDutyConfig {
	return PagerDutyConfig{URL: pagerduty.DefaultURL, Source: "herald", SeverityMap: map[string]string{
		"P1": pagerduty.SeverityCritical, "P2": pagerduty.SeverityError, "P3": pagerduty.SeverityWarning}}
}

// configured reports whether a routing key is given.
func (c *PagerDutyConfig) configured() bool { return c.RoutingKey != "" || c.RoutingKeyFile != "" }

// check validates the section; errors name the key and never show the
// routing key.
func (c *PagerDutyConfig) check() error {
	if !c.configured() {
		return nil
	}
	if c.RoutingKey != "" && c.RoutingKeyFile != "" {
		return errors.New("pagerduty: routingKey and routingKeyFile are exclusive")
	}
	if c.RoutingKey != "" {
		if err := pagerduty.CheckRoutingKey(c.RoutingKey); err != nil {
			return fmt.Errorf("pagerduty.routingKey: %w", err)
		}
	}
	if c.RoutingKeyFile != "" {
		if _, err := c.readKeyFile(); err != nil {
			return err
		}
	}
	if err := checkURL(c.URL); err != nil {
		return fmt.Errorf("pagerduty.url: %w", err)
	}
	for _, sev := range []string{"P1", "P2", "P3"} {
		if !pagerduty.ValidSeverity(c.SeverityMap[sev]) {
			return fmt.Errorf("pagerduty.severityMap.%s: %q is not critical, error, warning or info", sev, c.SeverityMap[sev])
		}
	}
	for k := range c.SeverityMap {
		if severityRank(k) == 0 {
			return fmt.Errorf("pagerduty.severityMap.%s: the severities are P1, P2 and P3", k)
		}
	}
	if c.Source == "" {
		return errors.New("pagerduty.source: must not be empty")
	}
	return nil
}

// resolveKey reads the routing key from its file, once, at start: a key
// that is missing or malformed stops the start rather than every step.
func (c *PagerDutyConfig) resolveKey() error {
	if c.RoutingKeyFile == "" {
		return nil
	}
	k, err := c.readKeyFile()
	if err != nil {
		return err
	}
	c.RoutingKey, c.RoutingKeyFile = k, ""
	return nil
}

func (c *PagerDutyConfig) readKeyFile() (string, error) {
	b, err := os.ReadFile(c.RoutingKeyFile)
	if err != nil {
		return "", fmt.Errorf("pagerduty.routingKeyFile: %w", err)
	}
	k := strings.TrimSpace(string(b))
	if err := pagerduty.CheckRoutingKey(k); err != nil {
		return "", fmt.Errorf("pagerduty.routingKeyFile: %w", err)
	}
	return k, nil
}

// pagerDutySink sends a lane's steps as Events API v2 events.
type pagerDutySink struct {
	client *pagerduty.Client
	cfg    PagerDutyConfig
}

func (p *pagerDutySink) Mode() string { return ModePagerDuty }
func (p *pagerDutySink) Caps() Caps   { return Caps{Ack: true} }

func (p *pagerDutySink) Send(ctx context.Context, l *Lane, st *Step) (Sent, error) {
	ev := p.event(l, st)
	r, err := p.client.Send(ctx, ev)
	if err != nil {
		return Sent{}, asSinkError(err)
	}
	if r.DedupKey != "" && r.DedupKey != ev.DedupKey {
		// Accepted under another key: later events would miss the alert.
		return Sent{}, &slack.Error{Method: "pagerduty", Code: "dedup_key_mismatch", Status: 202, Kind: slack.Permanent,
			Err: fmt.Errorf("PagerDuty filed the event under %q, not %q", r.DedupKey, ev.DedupKey)}
	}
	return Sent{Channel: destPagerDuty}, nil
}

// asSinkError gives PagerDuty's error the classification the pipeline's
// retry stage reads: 429 waits for Retry-After, 5xx and network errors back
// off, 400 is given up and recorded.
func asSinkError(err error) error {
	var pe *pagerduty.Error
	if !errors.As(err, &pe) {
		return &slack.Error{Method: "pagerduty", Code: "network", Kind: slack.Transient, Err: err}
	}
	kind := slack.Permanent
	switch pe.Kind {
	case pagerduty.Transient:
		kind = slack.Transient
	case pagerduty.RateLimited:
		kind = slack.RateLimited
	}
	// The pipeline's error says "slack pagerduty: <code> (HTTP <status>)"
	// itself, as for webhooks: only PagerDuty's explanation follows.
	cause := pe.Err
	if pe.Detail != "" {
		cause = errors.New(pe.Detail)
	}
	return &slack.Error{Method: "pagerduty", Code: pe.Code, Status: pe.Status, Kind: kind, RetryAfter: pe.RetryAfter, Err: cause}
}

// pagerDutyAction is the Events API action of a step, and the severity of
// a trigger.
func pagerDutyAction(st *Step, severities map[string]string) (string, string) {
	switch {
	case st.Kind == StepAck:
		return pagerduty.Acknowledge, ""
	case st.Snap.State == event.StateResolved:
		return pagerduty.Resolve, ""
	}
	return pagerduty.Trigger, severities[st.Snap.Severity]
}

// event builds a step's event. A trigger describes the incident's state
// at the transition; PagerDuty updates the open alert of the same dedup_key
// with it (summary, severity).
func (p *pagerDutySink) event(l *Lane, st *Step) *pagerduty.Event {
	action, sev := pagerDutyAction(st, p.cfg.SeverityMap)
	ev := &pagerduty.Event{RoutingKey: p.cfg.RoutingKey, EventAction: action, DedupKey: l.Incident}
	if action != pagerduty.Trigger {
		return ev
	}
	s := st.Snap
	at := s.At.UTC()
	source := p.cfg.Source
	for _, k := range []string{"provider", "integration", "app"} {
		if v := s.Group[k]; v != "" {
			source = v
			break
		}
	}
	ev.Client = "Herald"
	ev.Payload = &pagerduty.Payload{
		Summary: slack.Truncate(pagerDutySummary(s), pagerduty.MaxSummary), Source: source, Severity: sev, Timestamp: &at,
		Component: s.Group["provider"], Group: s.Group["app"], Class: s.Rule,
		CustomDetails: map[string]any{"incident_id": s.IncidentID, "rule": s.Rule, "severity": s.Severity,
			"peak_severity": s.Peak, "transition": s.Transition, "group": s.Group, "evidence": evidence(s),
			"events_sequences": fmt.Sprintf("%d-%d", s.Evidence.FirstSeq, s.Evidence.LastSeq)},
	}
	if s.Runbook != "" {
		ev.Links = []pagerduty.Link{{Href: s.Runbook, Text: "Runbook"}}
	}
	return ev
}

// pagerDutySummary is the alert's title: "[P1] rule (group): summary —
// evidence".
func pagerDutySummary(s Snapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s", s.Severity, s.Rule)
	if g := groupString(s.Group); g != "" {
		fmt.Fprintf(&b, " (%s)", g)
	}
	if s.Summary != "" {
		fmt.Fprintf(&b, ": %s", s.Summary)
	}
	fmt.Fprintf(&b, " — %s", evidence(s))
	return b.String()
}

// recordPagerDuty writes the pagerduty_event_sent entry of a step
// PagerDuty accepted, at once (as recordSent does for Slack).
func (n *Notifier) recordPagerDuty(l *Lane, st *Step, answered time.Time) bool {
	action, sev := pagerDutyAction(st, n.cfg.PagerDuty.SeverityMap)
	data := event.PagerDutyEventSent{IncidentID: l.Incident, Transition: st.Key, Destination: l.Dest, Step: st.Kind,
		EventAction: action, DedupKey: l.Incident, Severity: sev}
	subj := ledgerSubject(data.EventType(), l.Incident, st.Key, l.Dest, st.Kind)
	stored, err := n.writeOnce(n.hardCtx, ledgerEvent(data, subj, st.Cause))
	n.metrics.ledger.Observe(time.Since(answered).Seconds())
	if err != nil {
		n.log.Error("ledger entry NOT written after PagerDuty accepted an event: it will be sent again after a restart",
			"incident", l.Incident, "destination", l.Dest, "step", st.Kind, "transition", st.Key, "error", err)
		return false
	}
	n.apply(stored)
	return true
}

// applyPagerDuty folds a pagerduty_event_sent entry into its lane.
func (s *State) applyPagerDuty(d event.PagerDutyEventSent) {
	l := s.lane(d.IncidentID, d.Destination, d.Transition)
	ord := Ordinal(d.Transition)
	switch d.Step {
	case StepRoot:
		// One event per transition: the root told the story up to its own.
		l.Rooted, l.RootChannel, l.Mode = true, d.Destination, ModePagerDuty
		l.Rendered, l.Replied = max(l.Rendered, ord), max(l.Replied, ord)
	case StepReply:
		l.Replied = max(l.Replied, ord)
	case StepAck:
		l.AckSent = true
	}
}

// applyAcknowledged folds an incident_acknowledged entry.
func (s *State) applyAcknowledged(e *event.Event, d event.IncidentAcknowledged) {
	if s.acked == nil {
		s.acked = map[string]string{}
	}
	if _, ok := s.acked[d.IncidentID]; !ok {
		s.acked[d.IncidentID] = e.ID
	}
}

// nextAck is a lane's acknowledge step, due once its root is sent and the
// incident is acknowledged in Herald. A lane whose latest routed transition
// is the resolve has none: resolved wins, and the resolve tells PagerDuty.
func (s *State) nextAck(l *Lane, i *Timeline) *Step {
	cause, acked := s.acked[l.Incident]
	if !acked || l.AckSent || !l.Rooted {
		return nil
	}
	t := i.At(l.Target)
	if t.State == event.StateResolved {
		return nil
	}
	return &Step{Kind: StepAck, Key: ackTransition, Snap: t.Snapshot, Cause: cause}
}

// pagerDutySink builds the sink of the destination "pagerduty".
func (n *Notifier) pagerDutySink() Sink {
	if !n.cfg.PagerDuty.configured() {
		return &missing{dest: destPagerDuty}
	}
	return &pagerDutySink{client: pagerduty.NewClient(n.cfg.PagerDuty.URL, n.hc), cfg: n.cfg.PagerDuty}
}

// consumeAcks follows the acknowledgements recorded in NOTIFICATIONS: each
// is folded (a second fold of one already known changes nothing) and the
// incident's lanes are woken, so that its PagerDuty lane sends the
// acknowledge.
func (n *Notifier) consumeAcks(ctx context.Context) (*bus.Subscription, error) {
	return n.bus.Consume(ctx, bus.ConsumerConfig{Stream: streams.Notifications, Durable: AckDurable,
		FilterSubjects: []string{"notifications.incident_acknowledged.>"}, Concurrency: 1},
		func(_ context.Context, e *event.Event) error {
			d, ok := e.Data.(event.IncidentAcknowledged)
			if !ok {
				return nil
			}
			n.apply(e)
			n.mu.Lock()
			lanes := append([]*Lane(nil), n.state.LanesOf(d.IncidentID)...)
			n.mu.Unlock()
			for _, l := range lanes {
				n.kick(l)
			}
			return nil
		})
}
