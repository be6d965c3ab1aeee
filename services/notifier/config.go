package notifier

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/slack"
)

// Config is herald.yaml's notifier section.
type Config struct {
	Slack SlackConfig `yaml:"slack"`
	// IncomingWebhooks names Slack incoming webhook URLs; route to one with
	// "incoming:<name>". They cannot edit or thread (Slack answers only "ok").
	IncomingWebhooks map[string]string `yaml:"incomingWebhooks"`
	// Webhooks names generic JSON webhooks; route to one with "webhook:<name>".
	Webhooks map[string]WebhookConfig `yaml:"webhooks"`
	// PagerDuty is the Events API v2 integration; route to it with
	// "pagerduty" (pagerduty.go).
	PagerDuty PagerDutyConfig `yaml:"pagerduty"`
	// Routes send incidents to destinations. None configured: every
	// incident goes to the console.
	Routes    []Route     `yaml:"routes"`
	RateLimit RateConfig  `yaml:"rateLimit"`
	Retry     RetryConfig `yaml:"retry"`
	// RepeatInterval re-announces an open, unacknowledged incident in its
	// Slack thread when nothing was posted there for that long (as
	// Alertmanager's repeat_interval; default 4h, 0s: never). A route may
	// set its own.
	RepeatInterval config.Duration `yaml:"repeatInterval"`
	// GroupWait groups incidents opening in one Slack channel within it
	// under one root message listing them (group.go; default 0s: off). A
	// route may set its own.
	GroupWait config.Duration `yaml:"groupWait"`
	// PublicURL is where people reach Herald's API (https://herald.example.com):
	// the root message links to GET <publicURL>/v1/incidents/{id}. Empty: no link.
	PublicURL string `yaml:"publicURL" env:"HERALD_PUBLIC_URL"`
}

// SlackConfig configures the Web API and slash commands.
type SlackConfig struct {
	// APIURL is the Web API base URL (a fake's in tests).
	APIURL string `yaml:"apiURL" env:"HERALD_SLACK_API_URL"`
	// WorkspaceURL is the workspace's address (https://acme.slack.com),
	// the base of message permalinks (default https://slack.com, which
	// Slack redirects to the signed-in workspace).
	WorkspaceURL string `yaml:"workspaceURL" env:"HERALD_SLACK_WORKSPACE_URL"`
	// BotToken (xoxb-…) enables the Web API: post, edit, thread. Without
	// it, Slack channel destinations print to the console instead.
	BotToken string `yaml:"botToken" env:"HERALD_SLACK_BOT_TOKEN"`
	// SigningSecret verifies slash commands; without it they are refused.
	SigningSecret string          `yaml:"signingSecret" env:"HERALD_SLACK_SIGNING_SECRET"`
	Timeout       config.Duration `yaml:"timeout"`
}

// WebhookConfig is a generic JSON webhook.
type WebhookConfig struct {
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`
}

// Route sends the incidents its match selects to its channels.
type Route struct {
	Name     string                  `yaml:"name"`
	Match    event.SubscriptionMatch `yaml:"match"`
	Channels []string                `yaml:"channels"`
	// RepeatInterval overrides the notifier's for this route's
	// destinations (0s: no reminders from this route).
	RepeatInterval *config.Duration `yaml:"repeatInterval"`
	// GroupWait overrides the notifier's for this route's destinations.
	GroupWait *config.Duration `yaml:"groupWait"`
}

// RateConfig paces each Slack method by the limit Slack applies to it.
type RateConfig struct {
	// PerSecond and Burst pace posts per destination: chat.postMessage
	// (about one message per second per channel, short bursts allowed),
	// incoming and generic webhooks.
	PerSecond float64 `yaml:"perSecond"`
	Burst     int     `yaml:"burst"`
	// Update paces chat.update per workspace (Tier 3).
	Update MethodRate `yaml:"update"`
	// History paces conversations.history and conversations.replies, each
	// per workspace (Tier 3): the look-ups of steps in doubt.
	History MethodRate `yaml:"history"`
	// Delete paces chat.delete per workspace (Tier 3): duplicate repairs.
	Delete MethodRate `yaml:"delete"`
}

// MethodRate is a per-workspace method limit.
type MethodRate struct {
	PerMinute float64 `yaml:"perMinute"`
	Burst     int     `yaml:"burst"`
}

// RetryConfig is the backoff of every failure that may pass (5xx,
// timeouts, network errors, broken credentials): retried until it works.
type RetryConfig struct {
	Initial config.Duration `yaml:"initial"`
	Max     config.Duration `yaml:"max"`
}

// DefaultConfig posts nowhere but the console, at Slack's pace of about one
// message per second per channel with a burst of 3.
func DefaultConfig() Config {
	return Config{
		Slack:     SlackConfig{APIURL: slack.DefaultAPIURL, Timeout: config.Duration(10 * time.Second)},
		PagerDuty: defaultPagerDuty(),
		RateLimit: RateConfig{PerSecond: 1, Burst: 3, Update: MethodRate{PerMinute: 50, Burst: 10},
			History: MethodRate{PerMinute: 50, Burst: 5}, Delete: MethodRate{PerMinute: 50, Burst: 5}},
		Retry:          RetryConfig{Initial: config.Duration(time.Second), Max: config.Duration(5 * time.Minute)},
		RepeatInterval: config.Duration(4 * time.Hour),
	}
}

// Destination forms: a Slack channel (#name or id), a named incoming or
// generic webhook, or the console.
var (
	destPattern    = regexp.MustCompile(`^(console|pagerduty|#[a-z0-9][a-z0-9_-]{0,79}|[CGD][A-Z0-9]{2,20}|(incoming|webhook):[a-z0-9][a-z0-9_-]{0,62})$`)
	channelPattern = regexp.MustCompile(`^(console|#[a-z0-9][a-z0-9_-]{0,79}|[CGD][A-Z0-9]{2,20})$`)
	namePattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	severityExpr   = regexp.MustCompile(`^(>=|<=|>|<|=)?P[1-3]$`)
)

// Validate checks the section; errors name the key.
func (c *Config) Validate() error {
	if err := c.checkSinks(); err != nil {
		return err
	}
	if err := c.checkRoutes(); err != nil {
		return err
	}
	return c.checkPacing()
}

// checkSinks checks the Slack client and the webhooks.
func (c *Config) checkSinks() error {
	if c.Slack.APIURL != "" {
		if err := checkURL(c.Slack.APIURL); err != nil {
			return fmt.Errorf("slack.apiURL: %w", err)
		}
	}
	if c.Slack.Timeout <= 0 {
		return errors.New("slack.timeout: must be positive")
	}
	if c.PublicURL != "" {
		if err := checkURL(c.PublicURL); err != nil {
			return fmt.Errorf("publicURL: %w", err)
		}
	}
	if c.RepeatInterval < 0 {
		return errors.New("repeatInterval: must not be negative (0s: no reminders)")
	}
	if c.GroupWait < 0 {
		return errors.New("groupWait: must not be negative (0s: no grouping)")
	}
	if err := c.PagerDuty.check(); err != nil {
		return err
	}
	for name, u := range c.IncomingWebhooks {
		if !namePattern.MatchString(name) {
			return fmt.Errorf("incomingWebhooks.%s: names are lower-case letters, digits, - and _", name)
		}
		if err := checkURL(u); err != nil {
			return fmt.Errorf("incomingWebhooks.%s: %w", name, err)
		}
	}
	for name, w := range c.Webhooks {
		if !namePattern.MatchString(name) {
			return fmt.Errorf("webhooks.%s: names are lower-case letters, digits, - and _", name)
		}
		if err := checkURL(w.URL); err != nil {
			return fmt.Errorf("webhooks.%s.url: %w", name, err)
		}
	}
	return nil
}

// checkRoutes checks the routes: names, matches and destinations.
func (c *Config) checkRoutes() error {
	names := map[string]bool{}
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if !namePattern.MatchString(r.Name) {
			return fmt.Errorf("%s.name: %q: a route needs a name of lower-case letters, digits, - and _", key, r.Name)
		}
		if names[r.Name] {
			return fmt.Errorf("%s.name: %q is used twice", key, r.Name)
		}
		names[r.Name] = true
		if err := CheckMatch(r.Match); err != nil {
			return fmt.Errorf("%s.match.%w", key, err)
		}
		if r.RepeatInterval != nil && *r.RepeatInterval < 0 {
			return fmt.Errorf("%s.repeatInterval: must not be negative (0s: no reminders)", key)
		}
		if r.GroupWait != nil && *r.GroupWait < 0 {
			return fmt.Errorf("%s.groupWait: must not be negative (0s: no grouping)", key)
		}
		if len(r.Channels) == 0 {
			return fmt.Errorf("%s.channels: at least one destination is needed", key)
		}
		for j, ch := range r.Channels {
			if err := c.checkDestination(ch); err != nil {
				return fmt.Errorf("%s.channels[%d]: %w", key, j, err)
			}
		}
	}
	return nil
}

// checkPacing checks the rate limits and the retries.
func (c *Config) checkPacing() error {
	if c.RateLimit.PerSecond <= 0 || c.RateLimit.Burst < 1 {
		return errors.New("rateLimit: perSecond must be positive and burst at least 1")
	}
	for _, m := range []struct {
		key string
		r   MethodRate
	}{{"update", c.RateLimit.Update}, {"history", c.RateLimit.History}, {"delete", c.RateLimit.Delete}} {
		if m.r.PerMinute <= 0 || m.r.Burst < 1 {
			return fmt.Errorf("rateLimit.%s: perMinute must be positive and burst at least 1", m.key)
		}
	}
	if c.Retry.Initial <= 0 || c.Retry.Max < c.Retry.Initial {
		return errors.New("retry: initial must be positive and max at least initial")
	}
	return nil
}

func (c *Config) checkDestination(d string) error {
	if !destPattern.MatchString(d) {
		return fmt.Errorf("%q is not a destination: #channel-name, a channel id (C0123…), incoming:<name>, webhook:<name>, pagerduty or console", d)
	}
	switch {
	case d == destPagerDuty && !c.PagerDuty.configured():
		return fmt.Errorf("%q: no pagerduty.routingKey (or HERALD_PAGERDUTY_ROUTING_KEY, or routingKeyFile) is configured", d)
	case len(d) > 9 && d[:9] == "incoming:":
		if _, ok := c.IncomingWebhooks[d[9:]]; !ok {
			return fmt.Errorf("%q: no incomingWebhooks.%s is configured", d, d[9:])
		}
	case len(d) > 8 && d[:8] == "webhook:":
		if _, ok := c.Webhooks[d[8:]]; !ok {
			return fmt.Errorf("%q: no webhooks.%s is configured", d, d[8:])
		}
	}
	return nil
}

// CheckMatch validates a route's or a subscription's filter; the error
// starts with the field's name.
func CheckMatch(m event.SubscriptionMatch) error {
	if m.Severity != "" && !severityExpr.MatchString(m.Severity) {
		return fmt.Errorf("severity: %q is not P1, P2, P3 or a comparison such as >=P2", m.Severity)
	}
	for _, f := range []struct{ name, v string }{{"app", m.App}, {"provider", m.Provider}, {"route", m.Route},
		{"integration", m.Integration}, {"rule", m.Rule}} {
		if len(f.v) > 64 {
			return fmt.Errorf("%s: longer than 64 characters", f.name)
		}
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}
