package notifier

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/heraldhq/herald/pkg/event"
)

// severityRank orders severities: P1 is the most severe.
func severityRank(s string) int {
	switch s {
	case "P1":
		return 3
	case "P2":
		return 2
	case "P3":
		return 1
	}
	return 0
}

// severityMatches evaluates a severity filter: "P2", "=P2", ">=P2" (P2 or
// more severe), "<=P2", ">P2", "<P2".
func severityMatches(expr, sev string) bool {
	if expr == "" {
		return true
	}
	op, want := "=", expr
	for _, o := range []string{">=", "<=", ">", "<", "="} {
		if strings.HasPrefix(expr, o) {
			op, want = o, expr[len(o):]
			break
		}
	}
	have, w := severityRank(sev), severityRank(want)
	switch op {
	case ">=":
		return have >= w
	case "<=":
		return have <= w && have > 0
	case ">":
		return have > w
	case "<":
		return have < w && have > 0
	}
	return have == w
}

// Matches reports whether an incident's state satisfies a filter: every
// field set must match (severity by comparison, the others exactly).
func Matches(m event.SubscriptionMatch, s *Snapshot) bool {
	return severityMatches(m.Severity, s.Severity) &&
		(m.Rule == "" || m.Rule == s.Rule) &&
		(m.App == "" || m.App == s.Group["app"]) &&
		(m.Provider == "" || m.Provider == s.Group["provider"]) &&
		(m.Route == "" || m.Route == s.Group["route"]) &&
		(m.Integration == "" || m.Integration == s.Group["integration"])
}

// ParseFilter reads a filter written as the slash command takes it:
// "app=shop severity>=P2 rule=otp-failure-rate".
func ParseFilter(args []string) (event.SubscriptionMatch, error) {
	var m event.SubscriptionMatch
	for _, a := range args {
		if strings.HasPrefix(a, "severity") {
			expr := strings.TrimPrefix(a, "severity")
			if strings.HasPrefix(expr, "==") {
				expr = expr[1:]
			}
			expr = strings.ToUpper(expr)
			if !severityExpr.MatchString(expr) {
				return m, fmt.Errorf("%q: write severity=P2, severity>=P2 or severity<=P2", a)
			}
			m.Severity = strings.TrimPrefix(expr, "=")
			continue
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok || v == "" {
			return m, fmt.Errorf("%q: filters are key=value (app, provider, route, integration, rule, severity)", a)
		}
		switch k {
		case "app":
			m.App = v
		case "provider":
			m.Provider = v
		case "route":
			m.Route = v
		case "integration":
			m.Integration = v
		case "rule":
			m.Rule = v
		default:
			return m, fmt.Errorf("%q: unknown filter %q (app, provider, route, integration, rule, severity)", a, k)
		}
	}
	return m, CheckMatch(m)
}

// FilterString writes a filter as ParseFilter reads it, in a fixed order.
func FilterString(m event.SubscriptionMatch) string {
	var parts []string
	for _, f := range []struct{ k, v string }{{"app", m.App}, {"provider", m.Provider}, {"route", m.Route},
		{"integration", m.Integration}, {"rule", m.Rule}} {
		if f.v != "" {
			parts = append(parts, f.k+"="+f.v)
		}
	}
	if m.Severity != "" {
		sev := m.Severity
		if severityRank(sev) > 0 {
			sev = "=" + sev
		}
		parts = append(parts, "severity"+sev)
	}
	if len(parts) == 0 {
		return "(all incidents)"
	}
	return strings.Join(parts, " ")
}

// SubscriptionID derives a subscription's id from its channel and filter:
// subscribing twice to the same thing is one subscription.
func SubscriptionID(channel string, m event.SubscriptionMatch) string {
	sum := sha256.Sum256([]byte(channel + "\x00" + FilterString(m)))
	return "sub-" + hex.EncodeToString(sum[:8])
}

// route decides the destinations of an incident's transition: those already
// following the incident keep it (so a resolve always reaches whoever saw
// the open), and while it is open every route and subscription that matches
// its current state joins.
func route(routes []Route, subs map[string]*Subscription, following []string, s *Snapshot) ([]string, []event.RouteMatch) {
	seen := map[string]bool{}
	dests := append([]string(nil), following...)
	for _, d := range following {
		seen[d] = true
	}
	var joined []event.RouteMatch
	if s.State == event.StateResolved {
		return dests, nil
	}
	add := func(d, by string) {
		if !seen[d] {
			seen[d] = true
			dests = append(dests, d)
			joined = append(joined, event.RouteMatch{Destination: d, By: by})
		}
	}
	for _, r := range routes {
		if Matches(r.Match, s) {
			for _, ch := range r.Channels {
				add(ch, "route:"+r.Name)
			}
		}
	}
	ids := make([]string, 0, len(subs))
	for id := range subs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if sub := subs[id]; Matches(sub.Match, s) {
			add(sub.Channel, "subscription:"+id)
		}
	}
	return dests, joined
}
