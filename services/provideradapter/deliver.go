package provideradapter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/logging"
	"github.com/heraldhq/herald/pkg/otp"
	"github.com/heraldhq/herald/pkg/sms"
)

// dispatch is one leg to run: otp_dlt_dispatch (leg 0) or otp_dlt_fallback
// (a later leg). Only the seal is trusted: the other fields say which
// binding to open it with, and a seal opens only for the binding it was
// made for.
type dispatch struct {
	// ID names the leg (<requestId>.leg<n>): the ledger's attempts and the
	// leg's events derive from it, whatever the message's own id, so that a
	// copy of a dispatch re-published under another id calls nobody again.
	ID, RequestID  string
	App            string
	Sealed         string
	Leg            otp.Leg
	Index          int
	DeliveryPolicy string
	Deadline       time.Time
	// Reason is why a dispatch's leg 0 is off DLT.
	Reason string
	// fallback: the message is an otp_dlt_fallback.
	fallback bool
	cause    *event.Event
}

func toDispatch(e *event.Event) (dispatch, bool) {
	d := dispatch{RequestID: e.RequestID, cause: e}
	switch v := e.Data.(type) {
	case event.OTPDLTDispatch:
		d.App, d.Sealed, d.Leg, d.Index = v.App, v.Sealed, otp.Leg{Provider: v.Provider, Route: v.Route}, v.Leg
		d.DeliveryPolicy, d.Deadline, d.Reason = v.DeliveryPolicy, v.Deadline, v.Reason
	case event.OTPDLTFallback:
		d.App, d.Sealed, d.Leg, d.Index = v.App, v.Sealed, otp.Leg{Provider: v.Provider, Route: v.Route}, v.Leg
		d.DeliveryPolicy, d.Deadline, d.fallback = v.DeliveryPolicy, v.Deadline, true
	default:
		return d, false
	}
	d.ID = otp.LegKey(d.RequestID, d.Index)
	return d, true
}

// run collects a leg's events; they are published in order as they happen
// and all awaited before the dispatch is acknowledged.
type run struct {
	a       *adapter
	d       dispatch
	log     *slog.Logger
	futures []*bus.Future
	records []*bus.KVWrite // attempt outcomes in flight
	err     error
	// until is this leg's own deadline: the delivery deadline less what the
	// legs after it need (legDeadline).
	until time.Time
	// code and phone (opened from the seal) are scrubbed from anything a
	// provider or the network says; masked is the phone as events show it.
	code, phone, masked string
}

// scrub removes the code and the phone number from a provider's or the
// network's words (some providers echo the message or the recipient, in
// E.164, without the '+', or as the national number Fast2SMS is sent).
func (r *run) scrub(s string) string {
	if s == "" {
		return s
	}
	if r.code != "" {
		s = strings.ReplaceAll(s, r.code, otp.CodeMark)
	}
	if r.phone != "" {
		s = strings.ReplaceAll(s, r.phone, r.masked)
		digits := strings.TrimPrefix(r.phone, "+")
		s = strings.ReplaceAll(s, digits, logging.MaskPhone(digits))
		if national, ok := strings.CutPrefix(r.phone, "+91"); ok {
			s = strings.ReplaceAll(s, national, logging.MaskPhone(national))
		}
	}
	return s
}

func (r *run) emit(id string, data event.Data) {
	if r.err != nil {
		return
	}
	e := event.New(source, data, event.WithID(id), event.WithCausation(r.d.cause), event.WithRequestID(r.d.RequestID))
	f, err := r.a.bus.PublishAsync(e)
	if err != nil {
		r.err = err
		return
	}
	r.futures = append(r.futures, f)
}

func (r *run) wait(ctx context.Context) error {
	if r.err != nil {
		return r.err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, f := range r.futures {
		if _, err := f.Wait(ctx, r.a.bus); err != nil {
			return err
		}
	}
	// The events are stored: they are the outcome, and the dispatch is
	// acknowledged. An attempt record that could not be written only matters
	// to a redelivery, which an acknowledged dispatch does not get; failing
	// here would instead turn an SMS the provider accepted into an in-doubt
	// attempt, ended as outcome_unknown, and revoke a code the user has.
	for _, w := range r.records {
		if _, err := w.Wait(ctx); err != nil {
			r.log.Warn("attempt outcome not recorded; the dispatch is acknowledged with its events", "error", err)
		}
	}
	return nil
}

// handle runs one dispatch leg. Returning an error asks for redelivery; the
// attempt ledger makes the redelivery call no provider twice. A leg that is
// not provably the app's (refuse) is dead-lettered: nothing is sent.
func (a *adapter) handle(ctx context.Context, e *event.Event) error {
	d, ok := toDispatch(e)
	if !ok {
		return bus.Permanent(fmt.Errorf("not a dispatch event: %s", e.Type))
	}
	if d.fallback && d.Index == 0 {
		return nil // the record of why leg 0 is off DLT: the dispatch delivers it
	}
	r := &run{a: a, d: d, log: a.log.With("requestId", d.RequestID, "app", d.App, "provider", d.Leg.Provider, "route", d.Leg.Route)}
	app, err := a.authorize(r)
	if err != nil {
		return a.refuse(r, err)
	}
	_, test := app.TestCode(r.phone)
	if test && r.d.Leg.Provider != sms.Sim {
		// A test number never reaches a real provider, whatever the plan:
		// the simulator answers it, and the leg's events say so.
		r.d.Leg.Provider = sms.Sim
		r.log = a.log.With("requestId", d.RequestID, "app", d.App, "provider", sms.Sim, "route", d.Leg.Route)
		r.log.Warn("test number answered by the simulator, not the plan's provider", "event", "otp_test_number",
			"planProvider", d.Leg.Provider)
	}
	provider := a.providers[r.d.Leg.Provider]
	r.until = a.legDeadline(app, d)
	if !d.fallback && !d.Leg.IsDLT() {
		r.offDLT(app)
	}
	payload := app.Payload(r.d.Leg)
	r.emit(d.ID+".payload", payload)
	r.log.Info("provider payload ready", "event", "dlt_payload_ready", "senderId", payload.SenderID,
		"entityId", payload.EntityID, "templateId", payload.TemplateID, "messageId", payload.MessageID, "variables", payload.Variables)

	msg := app.Message(r.d.Leg, r.phone, r.code)
	msg.Visible = test || a.set.Demo // the simulator's outbox shows it
	res, attempts, outcome, err := a.attempts(ctx, r, provider, msg)
	if err != nil {
		return err
	}
	switch {
	case res.Class == sms.OK:
		r.deliver(app, res, attempts)
	case outcome == inDoubt:
		r.fail(app, r.d.Leg, attempts, res.Class, "outcome_unknown")
	default:
		r.fallBackOrFail(app, res, attempts)
	}
	return r.wait(ctx)
}

// legDeadline splits the delivery deadline between the legs of the plan: a
// leg with fallbacks after it must stop in time to leave each of them one
// call (their provider's timeout), so a DLT route that times out does not
// eat the fallback's time; it keeps at least an equal share of what is
// left. The last leg has whatever remains.
func (a *adapter) legDeadline(app *otp.AppSettings, d dispatch) time.Time {
	plan := app.Plan(a.set.DLTEnabled)
	if d.Index+1 >= len(plan) {
		return d.Deadline
	}
	var reserve time.Duration
	for _, l := range plan[d.Index+1:] {
		reserve += a.set.Providers.Common(l.Provider).Timeout.D()
	}
	left := time.Until(d.Deadline)
	fair := left / time.Duration(len(plan)-d.Index)
	return d.Deadline.Add(-min(reserve, left-fair))
}

// callDeadline bounds one provider call: a call may outlast the last leg's
// deadline by its timeout (it started in time), but a leg with fallbacks
// after it is cut at its own deadline, whose remainder belongs to them.
func (r *run) callDeadline(timeout time.Duration) time.Time {
	end := time.Now().Add(timeout)
	if r.until.Before(r.d.Deadline) {
		return minTime(end, r.until)
	}
	return minTime(end, r.d.Deadline.Add(timeout))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// offDLT records, as the owner of otp_dlt_fallback, why the dispatcher's
// leg 0 is off DLT (dlt_inactive, quick_only): the runbook's event. It
// carries no seal and delivers nothing; the dispatch delivers the leg.
func (r *run) offDLT(app *otp.AppSettings) {
	reason := r.d.Reason
	if reason == "" {
		reason = app.FirstReason(r.a.set.DLTEnabled)
	}
	r.emit(r.d.ID+".off_dlt", event.OTPDLTFallback{App: app.Name, Phone: r.masked, Provider: r.d.Leg.Provider, Route: r.d.Leg.Route,
		Reason: reason, DeliveryPolicy: app.DeliveryPolicy, Deadline: r.d.Deadline})
	r.log.Info("otp sent off dlt", "event", "otp_dlt_fallback", "reason", reason, "toProvider", r.d.Leg.Provider,
		"toRoute", r.d.Leg.Route, "deliveryPolicy", app.DeliveryPolicy)
}

// attempts calls the provider, retrying transient failures with backoff
// inside the delivery deadline; it stops at the first answer that is not
// transient, an in-doubt attempt, or an open circuit.
func (a *adapter) attempts(ctx context.Context, r *run, p sms.Provider, msg sms.Message) (*attemptResult, int, claimState, error) {
	common := a.set.Providers.Common(p.Name())
	bo := retryBackoff(common.Backoff.D())
	var res *attemptResult
	for n := 1; n <= 1+common.Retries; n++ {
		key := attemptKey(r.d.ID, n)
		var state claimState
		var rev uint64
		var err error
		if time.Now().After(r.until) {
			// Too late to call: only a previous delivery's outcome counts.
			late, prev, found, err := a.lateAttempt(ctx, key)
			if err != nil {
				return nil, n - 1, 0, err
			}
			if !found {
				if res == nil {
					res = &attemptResult{Class: sms.Transient, Error: "delivery deadline passed before the call", NotCalled: true}
				}
				return res, n - 1, claimed, nil
			}
			if state = late; state == replayed {
				res = prev
			}
		} else if state, rev, res, err = a.claimWhenSettled(ctx, key, common.Timeout.D()+2*time.Second); err != nil {
			return nil, n - 1, 0, err
		}
		switch state {
		case busy:
			return nil, n, busy, errors.New("attempt " + strconv.Itoa(n) + " is in progress in another worker")
		case inDoubt:
			// Herald's own crash, not the provider's answer: recorded on the
			// completion (reason outcome_unknown), never as a provider
			// response, so it neither fails nor counts as activity for the
			// provider in the incident rules.
			res = &attemptResult{Class: sms.Unknown, Error: "outcome unknown: the adapter stopped during this call; it is not repeated"}
			return res, n, inDoubt, nil
		case claimed:
			if res, err = a.call(ctx, r, p, msg, common.Timeout.D(), key, rev); err != nil {
				return nil, n, 0, err
			}
		}
		a.saveReceiptRef(ctx, r, p, res)
		if !res.NotCalled {
			r.response(n, res)
		}
		if res.Class != sms.Transient || res.CircuitOpen || n == 1+common.Retries {
			return res, n, state, nil
		}
		wait := bo.NextBackOff()
		if wait == backoff.Stop || time.Now().Add(wait).After(r.until) {
			return res, n, state, nil
		}
		if state == claimed {
			if err := sleepCtx(ctx, wait); err != nil {
				return nil, n, 0, err
			}
		}
	}
	return res, 1 + common.Retries, claimed, nil
}

// retryBackoff is the wait between attempts: exponential from initial, up
// to five times it.
func retryBackoff(initial time.Duration) *backoff.ExponentialBackOff {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = initial, 5*initial
	bo.Reset()
	return bo
}

// lateAttempt reads what a previous delivery recorded for the attempt key,
// without claiming it: replayed with its result, inDoubt when it was claimed
// but never finished; found is false when no delivery made the attempt.
func (a *adapter) lateAttempt(ctx context.Context, key string) (state claimState, res *attemptResult, found bool, err error) {
	rec, err := a.peek(ctx, key)
	if err != nil || rec == nil {
		return 0, nil, false, err
	}
	if rec.State != attemptDone || rec.Result == nil {
		return inDoubt, nil, true, nil
	}
	return replayed, rec.Result, true, nil
}

// call makes a claimed attempt: it calls the provider through its circuit
// breaker, counts the call and records its result under key.
func (a *adapter) call(ctx context.Context, r *run, p sms.Provider, msg sms.Message, timeout time.Duration, key string, rev uint64) (*attemptResult, error) {
	callCtx, cancel := context.WithDeadline(ctx, r.callDeadline(timeout))
	sr, open := a.breakers.call(p, r.d.Leg.Route, func() sms.Result { return p.Send(callCtx, msg) })
	cancel()
	res := fromResult(sr)
	res.CircuitOpen, res.NotCalled = open, open
	res.Error = r.scrub(res.Error)
	if !open {
		a.metrics.calls.WithLabelValues(p.Name(), r.d.Leg.Route, string(res.Class)).Inc()
		a.metrics.callTime.WithLabelValues(p.Name(), r.d.Leg.Route).Observe(sr.Latency.Seconds())
	}
	f, err := a.record(key, rev, res)
	if err != nil {
		return nil, err
	}
	r.records = append(r.records, f)
	return res, nil
}

// saveReceiptRef keeps, for an accepted send, what the provider's delivery
// receipt will need to find the request (the simulator sends none).
func (a *adapter) saveReceiptRef(ctx context.Context, r *run, p sms.Provider, res *attemptResult) {
	if res.Class != sms.OK || res.ProviderRequestID == "" || p.Name() == sms.Sim {
		return
	}
	if err := a.saveRef(ctx, p.Name(), res.ProviderRequestID,
		receiptRef{RequestID: r.d.RequestID, App: r.d.App, Route: r.d.Leg.Route}); err != nil {
		r.log.Warn("receipt reference not saved", "error", err)
	}
}

// sleepCtx waits for d, or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// response records one provider answer.
func (r *run) response(n int, res *attemptResult) {
	pr := event.ProviderResponse{App: r.d.App, Provider: r.d.Leg.Provider, Route: r.d.Leg.Route, StatusCode: res.StatusCode,
		ProviderCode: res.ProviderCode, Classification: string(res.Class), Attempt: n, LatencyMs: res.LatencyMs,
		ProviderRequestID: res.ProviderRequestID, Error: truncate(res.Error, 1024)}
	id := attemptKey(r.d.ID, n) + ".response"
	if res.Class == sms.OK {
		r.emit(id, event.ProviderResponseReceived(pr))
		r.log.Info("provider accepted the sms", "event", "provider_response_received", "statusCode", pr.StatusCode,
			"providerCode", pr.ProviderCode, "classification", pr.Classification, "attempt", n, "latencyMs", pr.LatencyMs)
		return
	}
	r.emit(id, event.ProviderResponseFailed(pr))
	r.log.Warn("provider call failed", "event", "provider_response_failed", "statusCode", pr.StatusCode,
		"providerCode", pr.ProviderCode, "classification", pr.Classification, "attempt", n, "latencyMs", pr.LatencyMs, "error", pr.Error)
}

func (r *run) deliver(app *otp.AppSettings, res *attemptResult, attempts int) {
	c := event.OTPDeliveryCompleted{App: app.Name, Status: "delivered", DeliveryMode: r.d.Leg.Route, Provider: r.d.Leg.Provider,
		Attempts: attempts, LatencyMs: r.sinceRequest(), Classification: string(sms.OK)}
	r.emit(r.d.RequestID+".completed", c)
	r.a.metrics.deliveries.WithLabelValues(app.Name, c.Status, c.DeliveryMode).Inc()
	r.log.Info("otp delivered", "event", "otp_delivery_completed", "status", c.Status, "deliveryMode", c.DeliveryMode,
		"attempts", attempts, "latencyMs", c.LatencyMs, "deliveryPolicy", app.DeliveryPolicy, "providerRequestId", res.ProviderRequestID)
}

// reasonFor names a failed leg for otp_dlt_fallback and otp_dlt_hard_failure.
func reasonFor(res *attemptResult) string {
	switch {
	case res.CircuitOpen:
		return "circuit_open"
	case res.NotCalled:
		return "deadline_exceeded"
	case res.Class == sms.Transient:
		return "transient_exhausted"
	}
	return string(res.Class)
}

// fallBackOrFail applies the policy to a failed leg: move to the next leg
// of the app's plan if there is one and time is left (dlt_with_fallback,
// quick_only across providers), else fail the send. A rejected DLT template
// is a hard failure whatever follows: it is never retried on that template.
func (r *run) fallBackOrFail(app *otp.AppSettings, res *attemptResult, attempts int) {
	reason := reasonFor(res)
	hard := false
	if r.d.Leg.IsDLT() && res.Class == sms.TemplateRejected {
		r.hardFailure(app, res, reason)
		hard = true
	}
	next, idx, ok := r.next(app)
	if ok && time.Now().Before(r.d.Deadline) {
		// The next leg gets its own seal: the one in hand opens only for this leg.
		sealed := r.a.set.Keys.Seal(otp.Binding{RequestID: r.d.RequestID, App: app.Name, Leg: idx, Provider: next.Provider,
			Route: next.Route}, r.phone, r.code)
		fb := event.OTPDLTFallback{App: app.Name, Phone: r.masked, Sealed: sealed, Provider: next.Provider, Route: next.Route,
			FromProvider: r.d.Leg.Provider, FromRoute: r.d.Leg.Route, Reason: reason, DeliveryPolicy: app.DeliveryPolicy,
			Deadline: r.d.Deadline, Leg: idx}
		r.emit(otp.LegKey(r.d.RequestID, idx), fb)
		r.log.Warn("otp falls back", "event", "otp_dlt_fallback", "reason", reason, "toProvider", next.Provider, "toRoute", next.Route,
			"deliveryPolicy", app.DeliveryPolicy, "classification", string(res.Class))
		return
	}
	if r.d.Leg.IsDLT() && !hard {
		r.hardFailure(app, res, reason)
	}
	r.fail(app, r.d.Leg, attempts, res.Class, reason)
}

// next is the leg after this one in the app's plan, if the plan has one
// (authorize made sure this leg is plan[Index]).
func (r *run) next(app *otp.AppSettings) (otp.Leg, int, bool) {
	plan := app.Plan(r.a.set.DLTEnabled)
	if i := r.d.Index + 1; i < len(plan) {
		return plan[i], i, true
	}
	return otp.Leg{}, 0, false
}

func (r *run) hardFailure(app *otp.AppSettings, res *attemptResult, reason string) {
	h := event.OTPDLTHardFailure{App: app.Name, Provider: r.d.Leg.Provider, Route: r.d.Leg.Route, Reason: reason,
		Classification: string(res.Class), StatusCode: res.StatusCode, DeliveryPolicy: app.DeliveryPolicy}
	r.emit(r.d.ID+".hard_failure", h)
	r.log.Error("dlt hard failure", "event", "otp_dlt_hard_failure", "reason", reason, "classification", h.Classification,
		"statusCode", h.StatusCode, "deliveryPolicy", app.DeliveryPolicy)
}

// fail ends the send: otp_notification_failed and otp_delivery_completed
// (status failed); the dispatcher revokes the code.
func (r *run) fail(app *otp.AppSettings, leg otp.Leg, attempts int, cls sms.Classification, reason string) {
	name, policy := app.Name, app.DeliveryPolicy
	class := string(cls)
	r.emit(r.d.RequestID+".notification_failed", event.OTPNotificationFailed{App: name, Channel: "sms", Provider: leg.Provider,
		Reason: reason, Classification: class})
	c := event.OTPDeliveryCompleted{App: name, Status: "failed", DeliveryMode: leg.Route, Provider: leg.Provider, Attempts: attempts,
		LatencyMs: r.sinceRequest(), Reason: reason, Classification: class}
	r.emit(r.d.RequestID+".completed", c)
	r.a.metrics.deliveries.WithLabelValues(name, c.Status, c.DeliveryMode).Inc()
	r.log.Warn("otp notification failed", "event", "otp_notification_failed", "channel", "sms", "reason", reason, "classification", class)
	r.log.Warn("otp delivery failed", "event", "otp_delivery_completed", "status", c.Status, "deliveryMode", c.DeliveryMode,
		"reason", reason, "classification", class, "attempts", attempts, "deliveryPolicy", policy)
}

// sinceRequest is the time since the send was requested: the request id
// is a UUIDv7, whose first bits are its creation time.
func (r *run) sinceRequest() float64 {
	start := r.d.cause.Time
	if u, err := uuid.Parse(r.d.RequestID); err == nil && u.Version() == 7 {
		sec, nsec := u.Time().UnixTime()
		start = time.Unix(sec, nsec)
	}
	return max(float64(time.Since(start).Microseconds())/1000, 0)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "…"
}
