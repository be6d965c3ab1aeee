package provideradapter

import (
	"errors"
	"fmt"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/logging"
	"github.com/heraldhq/herald/pkg/otp"
)

// Why a dispatch is refused (the reason in the log, the dead letter's error
// and herald_otp_dispatches_refused_total).
const (
	refusedNoRequest  = "no_request_id"
	refusedWrongOwner = "wrong_leg_for_type" // leg 0 is a dispatch, later legs are fallbacks
	refusedSeal       = "seal_invalid"
	refusedUnknownApp = "unknown_app"
	refusedNotInPlan  = "leg_not_in_plan"
	refusedNoProvider = "unknown_provider"
)

// refusal is why a dispatch is not sent.
type refusal struct{ reason, detail string }

func (e *refusal) Error() string { return "dispatch refused (" + e.reason + "): " + e.detail }

// authorize opens the seal and checks the leg against the app's plan: the
// adapter sends only a leg sealed for this request, app, leg index, provider
// and route (so the destination inside it is the one the dispatcher sealed)
// that is plan[leg] of the app. Leg 0 comes only as otp_dlt_dispatch (the
// dispatcher's), later legs only as otp_dlt_fallback (the adapter's).
func (a *adapter) authorize(r *run) (*otp.AppSettings, error) {
	d := r.d
	switch {
	case d.RequestID == "":
		return nil, &refusal{refusedNoRequest, "no ce-requestid: nothing to bind the seal to"}
	case d.fallback != (d.Index > 0):
		return nil, &refusal{refusedWrongOwner, fmt.Sprintf("leg %d in a %s", d.Index, d.cause.Type)}
	}
	phone, code, err := a.set.Keys.Open(otp.Binding{RequestID: d.RequestID, App: d.App, Leg: d.Index,
		Provider: d.Leg.Provider, Route: d.Leg.Route}, d.Sealed)
	if err != nil {
		return nil, &refusal{refusedSeal, err.Error() + "; are the dispatcher and adapter sharing the seal keys (OTP_SEAL_KEY)?"}
	}
	r.phone, r.code, r.masked = phone, code, logging.MaskPhone(phone)
	app, ok := a.set.App(d.App)
	if !ok {
		return nil, &refusal{refusedUnknownApp, "no app " + d.App + " in this adapter's configuration"}
	}
	plan := app.Plan(a.set.DLTEnabled)
	if d.Index >= len(plan) || plan[d.Index] != d.Leg {
		return nil, &refusal{refusedNotInPlan, fmt.Sprintf("leg %d %s/%s is not in app %s's plan %v (OTP_DLT_ENABLED=%v here)",
			d.Index, d.Leg.Provider, d.Leg.Route, app.Name, plan, a.set.DLTEnabled)}
	}
	if _, ok := a.providers[d.Leg.Provider]; !ok {
		return nil, &refusal{refusedNoProvider, "provider " + d.Leg.Provider + " is not configured here"}
	}
	return app, nil
}

// refuse dead-letters a refused dispatch; nothing is sent and nothing is
// recorded under its request id. Not a failed completion: the request id,
// app and leg of a refused message are unproven, and a completion is what
// the dispatcher trusts to revoke the code and answer a synchronous send —
// and its id (<requestId>.completed) is de-duplicated, so a forged leg
// completed first would silence the real leg's outcome. A genuine send
// refused for configuration drift between dispatcher and adapter (keys,
// apps, OTP_DLT_ENABLED) ends unanswered (202 pending) and its code expires;
// the DLQ and the error log say why.
func (a *adapter) refuse(r *run, err error) error {
	var rf *refusal
	if !errors.As(err, &rf) {
		return err
	}
	a.metrics.refused.WithLabelValues(rf.reason).Inc()
	r.log.Error("dispatch refused, nothing sent", "event", "otp_dispatch_refused", "reason", rf.reason,
		"leg", r.d.Index, "type", string(r.d.cause.Type), "error", rf.detail)
	return bus.Permanent(err)
}
