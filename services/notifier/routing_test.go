package notifier

import (
	"slices"
	"strings"
	"testing"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
)

func TestSeverityFilters(t *testing.T) {
	tests := []struct {
		expr, sev string
		want      bool
	}{
		{"", "P3", true}, {"P2", "P2", true}, {"P2", "P1", false}, {"=P3", "P3", true},
		{">=P2", "P1", true}, {">=P2", "P2", true}, {">=P2", "P3", false},
		{"<=P2", "P1", false}, {"<=P2", "P3", true}, {">P3", "P2", true}, {">P1", "P1", false},
		{"<P1", "P3", true}, {"<P2", "P2", false}, {">=P3", "", false},
	}
	for _, tt := range tests {
		if got := severityMatches(tt.expr, tt.sev); got != tt.want {
			t.Errorf("%q matches %q = %v, want %v", tt.expr, tt.sev, got, tt.want)
		}
	}
}

// Long on purpose: the matrix is one table, read as one.
func TestRoutingAndSubscriptionMatrix(t *testing.T) {
	routes := []Route{
		{Name: "p1", Match: event.SubscriptionMatch{Severity: "P1"}, Channels: []string{"#oncall"}},
		{Name: "shop", Match: event.SubscriptionMatch{App: "shop", Severity: ">=P2"}, Channels: []string{"#shop", "incoming:shop"}},
		{Name: "sms", Match: event.SubscriptionMatch{Provider: "fast2sms", Route: "dlt"}, Channels: []string{"#sms"}},
		{Name: "unpaid", Match: event.SubscriptionMatch{Rule: "integration-unpaid", Integration: "stripe"}, Channels: []string{"webhook:billing"}},
	}
	subs := map[string]*Subscription{
		"sub-bank": {ID: "sub-bank", Channel: "C0BANK", Match: event.SubscriptionMatch{App: "bank"}},
		"sub-crit": {ID: "sub-crit", Channel: "C0CRIT", Match: event.SubscriptionMatch{Severity: ">P2"}},
		"sub-low":  {ID: "sub-low", Channel: "C0LOW", Match: event.SubscriptionMatch{Severity: "<=P3", App: "shop"}},
	}
	snap := func(sev, state, rule string, group map[string]string) *Snapshot {
		return &Snapshot{Severity: sev, State: state, Rule: rule, Group: group}
	}
	tests := []struct {
		name      string
		s         *Snapshot
		following []string
		want      []string // destination←by, in order
	}{
		{"shop P3 goes to the shop subscription for low severities only",
			snap("P3", event.StateOpen, "otp-failure-rate", map[string]string{"app": "shop"}), nil,
			[]string{"C0LOW←subscription:sub-low"}},
		{"shop P2 matches the shop route",
			snap("P2", event.StateOpen, "otp-failure-rate", map[string]string{"app": "shop", "provider": "twilio"}), nil,
			[]string{"#shop←route:shop", "incoming:shop←route:shop"}},
		{"shop P1 also pages on-call and the critical subscription",
			snap("P1", event.StateOpen, "otp-failure-rate", map[string]string{"app": "shop"}), nil,
			[]string{"#oncall←route:p1", "#shop←route:shop", "incoming:shop←route:shop", "C0CRIT←subscription:sub-crit"}},
		{"a provider route needs both its fields",
			snap("P3", event.StateOpen, "otp-failure-rate", map[string]string{"app": "bank", "provider": "fast2sms", "route": "q"}), nil,
			[]string{"C0BANK←subscription:sub-bank"}},
		{"provider and route match",
			snap("P3", event.StateOpen, "otp-failure-rate", map[string]string{"app": "news", "provider": "fast2sms", "route": "dlt"}), nil,
			[]string{"#sms←route:sms"}},
		{"rule and integration match",
			snap("P2", event.StateOpen, "integration-unpaid", map[string]string{"integration": "stripe"}), nil,
			[]string{"webhook:billing←route:unpaid"}},
		{"nothing matches",
			snap("P3", event.StateOpen, "otp-failure-rate", map[string]string{"app": "news"}), nil, nil},
		{"an escalation keeps the followers and adds new matches",
			snap("P1", event.StateOpen, "otp-failure-rate", map[string]string{"app": "bank"}), []string{"C0BANK"},
			[]string{"C0BANK", "#oncall←route:p1", "C0CRIT←subscription:sub-crit"}},
		{"a de-escalation keeps whoever saw it",
			snap("P3", event.StateOpen, "otp-failure-rate", map[string]string{"app": "shop"}), []string{"#oncall", "#shop"},
			[]string{"#oncall", "#shop", "C0LOW←subscription:sub-low"}},
		{"a resolve goes to the followers only",
			snap("P1", event.StateResolved, "otp-failure-rate", map[string]string{"app": "shop"}), []string{"#shop"},
			[]string{"#shop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dests, matches := route(routes, subs, tt.following, tt.s)
			by := map[string]string{}
			for _, m := range matches {
				by[m.Destination] = m.By
			}
			var got []string
			for _, d := range dests {
				if b, ok := by[d]; ok {
					d += "←" + b
				}
				got = append(got, d)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestSlashFiltersParseAndPrint(t *testing.T) {
	tests := []struct {
		in      string
		want    event.SubscriptionMatch
		printed string
		err     string
	}{
		{"app=shop severity>=P2", event.SubscriptionMatch{App: "shop", Severity: ">=P2"}, "app=shop severity>=P2", ""},
		{"severity=p1 rule=otp-failure-rate", event.SubscriptionMatch{Severity: "P1", Rule: "otp-failure-rate"}, "rule=otp-failure-rate severity=P1", ""},
		{"severity==P3 provider=twilio route=q integration=stripe", event.SubscriptionMatch{Severity: "P3", Provider: "twilio", Route: "q", Integration: "stripe"},
			"provider=twilio route=q integration=stripe severity=P3", ""},
		{"", event.SubscriptionMatch{}, "(all incidents)", ""},
		{"colour=red", event.SubscriptionMatch{}, "", `unknown filter "colour"`},
		{"app", event.SubscriptionMatch{}, "", "key=value"},
		{"severity>=P4", event.SubscriptionMatch{}, "", "severity>=P2"},
		{"app=" + strings.Repeat("x", 65), event.SubscriptionMatch{}, "", "app: longer than 64"},
	}
	for _, tt := range tests {
		m, err := ParseFilter(strings.Fields(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want one mentioning %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || m != tt.want || FilterString(m) != tt.printed {
			t.Errorf("%q: got %+v %q %v", tt.in, m, FilterString(m), err)
		}
		if again, _ := ParseFilter(strings.Fields(FilterString(m))); tt.in != "" && again != m {
			t.Errorf("%q does not survive printing: %+v", tt.in, again)
		}
	}
	a := SubscriptionID("C01", event.SubscriptionMatch{App: "shop", Severity: ">=P2"})
	if a != SubscriptionID("C01", event.SubscriptionMatch{Severity: ">=P2", App: "shop"}) || a == SubscriptionID("C02", event.SubscriptionMatch{App: "shop", Severity: ">=P2"}) ||
		!strings.HasPrefix(a, "sub-") || len(a) != 20 {
		t.Errorf("subscription ids: %s", a)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"route without name", func(c *Config) { c.Routes = []Route{{Channels: []string{"console"}}} }, "routes[0].name"},
		{"bad destination", func(c *Config) { c.Routes = []Route{{Name: "a", Channels: []string{"ops"}}} }, "routes[0].channels[0]"},
		{"unknown webhook", func(c *Config) { c.Routes = []Route{{Name: "a", Channels: []string{"webhook:x"}}} }, "no webhooks.x"},
		{"bad severity", func(c *Config) {
			c.Routes = []Route{{Name: "a", Match: event.SubscriptionMatch{Severity: "high"}, Channels: []string{"console"}}}
		}, "routes[0].match.severity"},
		{"bad webhook url", func(c *Config) { c.IncomingWebhooks = map[string]string{"ops": "hooks.slack.com"} }, "incomingWebhooks.ops"},
		{"rate", func(c *Config) { c.RateLimit.PerSecond = 0 }, "rateLimit"},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		tt.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error naming %q", tt.name, err, tt.want)
		}
	}
	f, err := config.Parse("test", []byte(`
notifier:
  routes:
    - {name: shop, match: {app: shop, severity: ">=P2", provider: twilio, route: q, integration: stripe, rule: r}, channels: ["#shop"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	if err := f.Section("notifier", &c); err != nil {
		t.Fatal(err)
	}
	if m := c.Routes[0].Match; m != (event.SubscriptionMatch{App: "shop", Severity: ">=P2", Provider: "twilio", Route: "q", Integration: "stripe", Rule: "r"}) {
		t.Errorf("match read from YAML: %+v", m)
	}
	bad, _ := config.Parse("test", []byte("notifier:\n  routes:\n    - {name: a, match: {colour: red}, channels: [console]}\n"))
	if err := bad.Section("notifier", &c); err == nil || !strings.Contains(err.Error(), `notifier.routes[0].match: unknown key "colour"`) {
		t.Errorf("unknown match key: %v", err)
	}
	if c := DefaultConfig(); c.Validate() != nil {
		t.Errorf("defaults: %v", c.Validate())
	}
}
