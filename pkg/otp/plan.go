package otp

import (
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/sms"
)

// Leg is one provider and route a send may use.
type Leg struct {
	Provider string
	Route    string
}

// IsDLT reports whether the leg uses a DLT route.
func (l Leg) IsDLT() bool { return l.Route == sms.RouteDLT || l.Route == sms.RouteDLTManual }

// Plan is the ordered list of legs an app's send may use, given the global
// DLT switch: the first is tried first; each next one only after the
// previous failed, and only as the policy allows.
//
//   - DLT off: every app, DLT-only ones too, uses quick routes
//     (a DLT-only app only its first provider's: it never falls back).
//   - dlt_with_fallback: DLT on the first provider, then its quick route,
//     then the quick route of each next provider.
//   - dlt_only: DLT on the first provider, nothing else.
//   - quick_only: the quick route of each provider in order.
func (a *AppSettings) Plan(dltEnabled bool) []Leg {
	quick := func(ps []string) []Leg {
		legs := make([]Leg, 0, len(ps))
		for _, p := range ps {
			legs = append(legs, Leg{Provider: p, Route: sms.QuickRoute(p)})
		}
		return legs
	}
	switch {
	case a.DeliveryPolicy == DLTOnly && !dltEnabled:
		return quick(a.Providers[:1])
	case a.DeliveryPolicy == QuickOnly || !dltEnabled:
		return quick(a.Providers)
	case a.DeliveryPolicy == DLTOnly:
		return []Leg{{Provider: a.Providers[0], Route: a.DLT.Route}}
	default:
		return append([]Leg{{Provider: a.Providers[0], Route: a.DLT.Route}}, quick(a.Providers)...)
	}
}

// FirstReason is why the first leg is not DLT ("" when it is DLT): the
// reason of the dispatch, and of the adapter's otp_dlt_fallback for leg 0.
func (a *AppSettings) FirstReason(dltEnabled bool) string {
	switch {
	case !dltEnabled:
		return "dlt_inactive"
	case a.DeliveryPolicy == QuickOnly:
		return "quick_only"
	}
	return ""
}

// Policy is the app's effective policy as otp_cutover_status and
// GET /platform/otp report it.
func (a *AppSettings) Policy(dltEnabled bool) event.AppPolicy {
	plan := a.Plan(dltEnabled)
	p := event.AppPolicy{App: a.Name, DeliveryPolicy: a.DeliveryPolicy, LegacyRouteEnabled: a.LegacyRouteEnabled,
		EffectiveRoute: plan[0].Route, Providers: append([]string(nil), a.Providers...)}
	if len(plan) > 1 {
		p.FallbackRoute = plan[1].Route
	}
	return p
}
