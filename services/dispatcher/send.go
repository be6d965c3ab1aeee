package dispatcher

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/logging"
	"github.com/heraldhq/herald/pkg/otp"
)

type sendRequest struct {
	App   string `json:"app"`
	Phone string `json:"phone"`
}

// sendAnswer is the body of a 200 or 202.
type sendAnswer struct {
	RequestID    string `json:"requestId"`
	Status       string `json:"status"` // sent | accepted | pending
	DeliveryMode string `json:"deliveryMode,omitempty"`
	Provider     string `json:"provider,omitempty"`
}

const maxIdempotencyKey = 255

// send serves POST /v1/otp/send.
func (s *otpService) send(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	in, err := s.parseSend(r)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	ctx := r.Context()
	var held *claim
	var bodyKey []byte
	if in.idemKey != "" {
		bodyKey = bodyHash(in.app.Name, in.phone, in.mode)
		c, rep, err := s.acquireIdempotency(ctx, in, bodyKey)
		switch {
		case err != nil:
			s.fail(w, in.app.Name, err)
			return
		case rep != nil:
			writeReplay(w, rep)
			return
		}
		held = c
	}
	// With a key, the send runs to its answer even if the caller leaves:
	// that answer is what a repeat of the key gets (a broker's redelivery,
	// a client's retry), so it must be the outcome, not a "pending" cut
	// short, nor a claim released after the code was dispatched (which
	// would let the repeat send a second SMS). SyncTimeout bounds it.
	issueCtx := ctx
	if held != nil {
		issueCtx = context.WithoutCancel(ctx)
	}
	status, answer, err := s.issue(issueCtx, in.app, in.phone, in.mode == "async", start)
	if err != nil {
		if held != nil {
			s.idem.release(context.WithoutCancel(ctx), held)
		}
		s.fail(w, in.app.Name, err)
		return
	}
	failed, _ := answer.(*api.Error) // a 502: the SMS failed
	if failed != nil {
		failed.Instance = r.URL.EscapedPath() // (stored with the answer: a replay is the same problem)
	}
	if held != nil {
		if err := s.idem.complete(context.WithoutCancel(ctx), held, bodyKey, status, answer); err != nil {
			s.log.Warn("idempotency answer not stored", "app", in.app.Name, "error", err)
		}
	}
	if failed != nil {
		api.WriteError(w, failed)
		return
	}
	api.WriteJSON(w, status, answer)
}

// sendInput is a POST /v1/otp/send that passed validation.
type sendInput struct {
	app     *otp.AppSettings
	phone   string // normalized
	mode    string // "", "sync" or "async"
	idemKey string // the Idempotency-Key header, if any
}

// parseSend validates a send request, in the order its errors are answered.
func (s *otpService) parseSend(r *http.Request) (sendInput, error) {
	var req sendRequest
	if err := api.DecodeJSON(r, s.maxBody, &req); err != nil {
		return sendInput{}, err
	}
	mode := r.URL.Query().Get("mode")
	if mode != "" && mode != "sync" && mode != "async" {
		return sendInput{}, api.Errorf(http.StatusBadRequest, "invalid_mode", "mode %q is not sync or async", mode)
	}
	if req.App == "" {
		return sendInput{}, api.Errorf(http.StatusBadRequest, "invalid_request", "app is required")
	}
	if err := api.AllowApp(r.Context(), req.App); err != nil {
		return sendInput{}, err
	}
	app, ok := s.set.App(req.App)
	if !ok {
		return sendInput{}, api.Errorf(http.StatusNotFound, "unknown_app", "no app %q is configured (GET /platform/otp lists them)", req.App)
	}
	if req.Phone == "" {
		return sendInput{}, api.Errorf(http.StatusBadRequest, "invalid_phone", "phone is required")
	}
	phone, err := app.NormalizePhone(req.Phone)
	if err != nil {
		return sendInput{}, api.Errorf(http.StatusBadRequest, "invalid_phone", "%v", err)
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		return sendInput{}, api.Errorf(http.StatusBadRequest, "invalid_idempotency_key", "Idempotency-Key is longer than %d characters", maxIdempotencyKey)
	}
	return sendInput{app: app, phone: phone, mode: mode, idemKey: key}, nil
}

// acquireIdempotency claims the send's Idempotency-Key for as long as a sync
// send can take; a non-nil replay is the answer an earlier send stored.
func (s *otpService) acquireIdempotency(ctx context.Context, in sendInput, bodyKey []byte) (*claim, *replay, error) {
	hold := s.set.OTP.SyncTimeout.D() + 5*time.Second
	return s.idem.acquire(ctx, s.set.Keys.Keyed("idem:"+in.app.Name+":"+in.idemKey), bodyKey, hold)
}

// writeReplay answers with the stored answer of an earlier send.
func writeReplay(w http.ResponseWriter, rep *replay) {
	w.Header().Set("Idempotent-Replayed", "true")
	ct := "application/json"
	if rep.Status >= 400 {
		ct = api.ProblemContentType // a stored *api.Error
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(rep.Status)
	_, _ = w.Write(append(rep.Answer, '\n'))
}

// fail answers an error: 429 with Retry-After, 503 when the log is down.
func (s *otpService) fail(w http.ResponseWriter, app string, err error) {
	var ae *api.Error
	if !errors.As(err, &ae) {
		s.log.Error("otp send failed", "app", app, "error", err)
		ae = api.Errorf(http.StatusServiceUnavailable, "unavailable", "the event log or its key-value store did not answer; try again")
	}
	result := "rejected"
	switch ae.Status {
	case http.StatusTooManyRequests:
		result = "limited"
		retryAfter(w, ae)
	case http.StatusServiceUnavailable:
		result = "unavailable"
	}
	s.metrics.sends.WithLabelValues(app, result).Inc()
	api.WriteError(w, ae)
}

// issue generates, stores and dispatches a code, then (sync) waits for the
// delivery outcome. It returns the answer's status and body.
func (s *otpService) issue(ctx context.Context, app *otp.AppSettings, phone string, async bool, start time.Time) (int, any, error) {
	c, err := s.store(ctx, app, phone)
	if err != nil {
		return 0, nil, err
	}
	p := s.planDispatch(app, phone, c)
	var wait <-chan event.OTPDeliveryCompleted
	if !async {
		var cancel func()
		wait, cancel = s.done.wait(c.requestID)
		defer cancel()
	}
	pctx, cancelPub := context.WithTimeout(ctx, 5*time.Second)
	_, err = s.bus.Publish(pctx, p.generated, p.dispatch)
	cancelPub()
	if err != nil {
		// Nothing may have been dispatched: the code must not stay usable.
		if rerr := s.revoke(context.WithoutCancel(ctx), c.requestID, "dispatch_failed"); rerr != nil {
			s.log.Warn("could not revoke an undispatched otp", "requestId", c.requestID, "error", rerr)
		}
		return 0, nil, err
	}
	s.logDispatched(app, c, p)
	if async {
		s.metrics.sends.WithLabelValues(app.Name, "accepted").Inc()
		return http.StatusAccepted, sendAnswer{RequestID: c.requestID, Status: "accepted"}, nil
	}
	status, answer := s.awaitDelivery(ctx, app, c.requestID, wait, start)
	return status, answer, nil
}

// storedCode is a code whose hash is stored and whose send the limits
// allowed; it is not dispatched yet.
type storedCode struct {
	requestID string
	code      string
	expires   time.Time
	deadline  time.Time // for the delivery: the timeout, or the expiry if sooner
}

// store checks the app's and the phone's limits, generates a code and stores
// its hash. A test number gets its fixed code and is exempt from both
// limits: a test suite sends to it again and again (supabase/cli#3656), and
// its sends reach no provider but the simulator.
func (s *otpService) store(ctx context.Context, app *otp.AppSettings, phone string) (storedCode, error) {
	code, test := app.TestCode(phone)
	if !test {
		if err := s.limits.allowApp(ctx, app); err != nil {
			return storedCode{}, err
		}
		var err error
		if code, err = otp.NewCode(app.CodeLength); err != nil {
			return storedCode{}, err
		}
	}
	requestID := event.NewID()
	now := time.Now().UTC()
	expires := now.Add(app.TTL.D())
	deadline := now.Add(s.set.OTP.DeliveryTimeout.D())
	if deadline.After(expires) {
		deadline = expires
	}
	hashKeyID, hash := s.set.Keys.Hash(requestID, code)
	rec := codeRecord{App: app.Name, Hash: hash, HashKeyID: hashKeyID, ExpiresAt: expires,
		MaxAttempts: app.MaxVerifyAttempts, State: statePending}
	// The phone's limit and the code's hash are written in one round trip: a
	// hash stored for a send the limit then refuses is never dispatched, its
	// request id never given out, and it expires with its TTL.
	var phone1 *phoneCheck
	if !test {
		var err error
		if phone1, err = s.limits.startPhone(app, phone); err != nil {
			return storedCode{}, err
		}
	}
	stored, err := s.codes.createAsync(requestID, rec, app.TTL.D())
	if err != nil {
		return storedCode{}, err
	}
	if err := phone1.finish(ctx); err != nil {
		return storedCode{}, err
	}
	if err := stored.wait(ctx); err != nil {
		return storedCode{}, err
	}
	return storedCode{requestID: requestID, code: code, expires: expires, deadline: deadline}, nil
}

// dispatchPlan is what issue publishes for a stored code.
type dispatchPlan struct {
	generated, dispatch *event.Event
	leg                 otp.Leg
	reason              string // why leg 0 is off DLT; empty on DLT
	masked              string // the phone as events and logs show it
}

// planDispatch builds the otp_generated event and leg 0's dispatch.
func (s *otpService) planDispatch(app *otp.AppSettings, phone string, c storedCode) dispatchPlan {
	// Leg 0 is always the dispatcher's otp_dlt_dispatch, DLT or not (the
	// adapter, which owns otp_dlt_fallback, records a leg off DLT): the
	// phone and the code travel only inside its seal, bound to this leg.
	leg := app.Plan(s.set.DLTEnabled)[0]
	sealed := s.set.Keys.Seal(otp.Binding{RequestID: c.requestID, App: app.Name, Leg: 0, Provider: leg.Provider, Route: leg.Route}, phone, c.code)
	masked := logging.MaskPhone(phone)
	generated := event.New(source, event.OTPGenerated{App: app.Name, Phone: masked, CodeLength: app.CodeLength,
		ExpiresAt: c.expires, DeliveryPolicy: app.DeliveryPolicy}, event.WithRequestID(c.requestID), event.WithID(c.requestID+".generated"))
	reason := app.FirstReason(s.set.DLTEnabled)
	d := event.OTPDLTDispatch{App: app.Name, Phone: masked, Sealed: sealed, Provider: leg.Provider, Route: leg.Route,
		DeliveryPolicy: app.DeliveryPolicy, Deadline: c.deadline, Reason: reason}
	if leg.IsDLT() {
		d.TemplateID = app.DLT.TemplateID
	}
	dispatch := event.New(source, d, event.WithRequestID(c.requestID), event.WithCausation(generated), event.WithID(otp.LegKey(c.requestID, 0)))
	return dispatchPlan{generated: generated, dispatch: dispatch, leg: leg, reason: reason, masked: masked}
}

// logDispatched logs a published code and its first leg.
func (s *otpService) logDispatched(app *otp.AppSettings, c storedCode, p dispatchPlan) {
	log := s.log.With("requestId", c.requestID, "app", app.Name)
	log.Info("otp generated", "event", "otp_generated", "phone", p.masked,
		"deliveryPolicy", app.DeliveryPolicy, "codeLength", app.CodeLength, "expiresAt", c.expires)
	if p.leg.IsDLT() {
		log.Info("otp dispatched over dlt", "event", "otp_dlt_dispatch", "provider", p.leg.Provider, "route", p.leg.Route,
			"deliveryPolicy", app.DeliveryPolicy, "templateId", app.DLT.TemplateID)
	} else {
		log.Info("otp dispatched off dlt", "event", "otp_dlt_dispatch", "provider", p.leg.Provider, "route", p.leg.Route,
			"reason", p.reason, "deliveryPolicy", app.DeliveryPolicy)
	}
}

// awaitDelivery waits, up to the sync timeout, for a dispatched code's
// delivery outcome and answers with it; pending when none came in time.
func (s *otpService) awaitDelivery(ctx context.Context, app *otp.AppSettings, requestID string, wait <-chan event.OTPDeliveryCompleted, start time.Time) (int, any) {
	timer := time.NewTimer(s.set.OTP.SyncTimeout.D())
	defer timer.Stop()
	select {
	case d := <-wait:
		s.metrics.latency.WithLabelValues(app.Name).Observe(time.Since(start).Seconds())
		if d.Status == "delivered" {
			s.metrics.sends.WithLabelValues(app.Name, "sent").Inc()
			return http.StatusOK, sendAnswer{RequestID: requestID, Status: "sent", DeliveryMode: d.DeliveryMode, Provider: d.Provider}
		}
		if d.Reason == outcomeUnknown {
			// In doubt, not failed: the code stays valid (see onFailed).
			s.metrics.sends.WithLabelValues(app.Name, "pending").Inc()
			return http.StatusAccepted, sendAnswer{RequestID: requestID, Status: "pending"}
		}
		// Revoke before answering, so a verify right after the 502 gets 410.
		if err := s.revoke(context.WithoutCancel(ctx), requestID, "delivery_failed"); err != nil {
			s.log.Warn("revoke after failed delivery", "requestId", requestID, "error", err)
		}
		s.metrics.sends.WithLabelValues(app.Name, "failed").Inc()
		return http.StatusBadGateway, &api.Error{Status: http.StatusBadGateway, Code: "sms_failed", Extra: map[string]any{"requestId": requestID},
			Detail: "the SMS could not be delivered (" + d.Reason + "); the code is revoked, send a new one"}
	case <-timer.C:
	case <-ctx.Done(): // the caller left; the code is on its way all the same
	}
	s.metrics.sends.WithLabelValues(app.Name, "pending").Inc()
	return http.StatusAccepted, sendAnswer{RequestID: requestID, Status: "pending"}
}
