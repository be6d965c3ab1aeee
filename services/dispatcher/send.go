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
	var req sendRequest
	if err := api.DecodeJSON(r, s.maxBody, &req); err != nil {
		api.WriteError(w, err)
		return
	}
	mode := r.URL.Query().Get("mode")
	if mode != "" && mode != "sync" && mode != "async" {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, "invalid_mode", "mode %q is not sync or async", mode))
		return
	}
	if req.App == "" {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, "invalid_request", "app is required"))
		return
	}
	if err := api.AllowApp(r.Context(), req.App); err != nil {
		api.WriteError(w, err)
		return
	}
	app, ok := s.set.App(req.App)
	if !ok {
		api.WriteError(w, api.Errorf(http.StatusNotFound, "unknown_app", "no app %q is configured (GET /platform/otp lists them)", req.App))
		return
	}
	if req.Phone == "" {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, "invalid_phone", "phone is required"))
		return
	}
	phone, err := app.NormalizePhone(req.Phone)
	if err != nil {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, "invalid_phone", "%v", err))
		return
	}
	ctx := r.Context()
	var held *claim
	var bodyKey []byte
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if len(key) > maxIdempotencyKey {
			api.WriteError(w, api.Errorf(http.StatusBadRequest, "invalid_idempotency_key", "Idempotency-Key is longer than %d characters", maxIdempotencyKey))
			return
		}
		bodyKey = bodyHash(app.Name, phone, mode)
		hold := s.set.OTP.SyncTimeout.D() + 5*time.Second
		c, rep, err := s.idem.acquire(ctx, s.set.Keys.Keyed("idem:"+app.Name+":"+key), bodyKey, hold)
		switch {
		case err != nil:
			s.fail(w, app.Name, err)
			return
		case rep != nil:
			w.Header().Set("Idempotent-Replayed", "true")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(rep.Status)
			_, _ = w.Write(append(rep.Answer, '\n'))
			return
		}
		held = c
	}
	status, answer, err := s.issue(ctx, app, phone, mode == "async", start)
	if err != nil {
		if held != nil {
			s.idem.release(context.WithoutCancel(ctx), held)
		}
		s.fail(w, app.Name, err)
		return
	}
	if held != nil {
		if err := s.idem.complete(context.WithoutCancel(ctx), held, bodyKey, status, answer); err != nil {
			s.log.Warn("idempotency answer not stored", "app", app.Name, "error", err)
		}
	}
	api.WriteJSON(w, status, answer)
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
	if err := s.limits.allowApp(ctx, app); err != nil {
		return 0, nil, err
	}
	requestID := event.NewID()
	code, err := otp.NewCode(app.CodeLength)
	if err != nil {
		return 0, nil, err
	}
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
	phone1, err := s.limits.startPhone(app, phone)
	if err != nil {
		return 0, nil, err
	}
	stored, err := s.codes.createAsync(requestID, rec, app.TTL.D())
	if err != nil {
		return 0, nil, err
	}
	if err := phone1.finish(ctx); err != nil {
		return 0, nil, err
	}
	if err := stored.wait(ctx); err != nil {
		return 0, nil, err
	}
	// Leg 0 is always the dispatcher's otp_dlt_dispatch, DLT or not (the
	// adapter, which owns otp_dlt_fallback, records a leg off DLT): the
	// phone and the code travel only inside its seal, bound to this leg.
	leg := app.Plan(s.set.DLTEnabled)[0]
	sealed := s.set.Keys.Seal(otp.Binding{RequestID: requestID, App: app.Name, Leg: 0, Provider: leg.Provider, Route: leg.Route}, phone, code)
	masked := logging.MaskPhone(phone)
	generated := event.New(source, event.OTPGenerated{App: app.Name, Phone: masked, CodeLength: app.CodeLength,
		ExpiresAt: expires, DeliveryPolicy: app.DeliveryPolicy}, event.WithRequestID(requestID), event.WithID(requestID+".generated"))
	reason := app.FirstReason(s.set.DLTEnabled)
	d := event.OTPDLTDispatch{App: app.Name, Phone: masked, Sealed: sealed, Provider: leg.Provider, Route: leg.Route,
		DeliveryPolicy: app.DeliveryPolicy, Deadline: deadline, Reason: reason}
	if leg.IsDLT() {
		d.TemplateID = app.DLT.TemplateID
	}
	dispatch := event.New(source, d, event.WithRequestID(requestID), event.WithCausation(generated), event.WithID(otp.LegKey(requestID, 0)))
	var wait <-chan event.OTPDeliveryCompleted
	if !async {
		var cancel func()
		wait, cancel = s.done.wait(requestID)
		defer cancel()
	}
	pctx, cancelPub := context.WithTimeout(ctx, 5*time.Second)
	_, err = s.bus.Publish(pctx, generated, dispatch)
	cancelPub()
	if err != nil {
		// Nothing may have been dispatched: the code must not stay usable.
		if rerr := s.revoke(context.WithoutCancel(ctx), requestID, "dispatch_failed"); rerr != nil {
			s.log.Warn("could not revoke an undispatched otp", "requestId", requestID, "error", rerr)
		}
		return 0, nil, err
	}
	log := s.log.With("requestId", requestID, "app", app.Name)
	log.Info("otp generated", "event", "otp_generated", "phone", masked,
		"deliveryPolicy", app.DeliveryPolicy, "codeLength", app.CodeLength, "expiresAt", expires)
	if leg.IsDLT() {
		log.Info("otp dispatched over dlt", "event", "otp_dlt_dispatch", "provider", leg.Provider, "route", leg.Route,
			"deliveryPolicy", app.DeliveryPolicy, "templateId", app.DLT.TemplateID)
	} else {
		log.Info("otp dispatched off dlt", "event", "otp_dlt_dispatch", "provider", leg.Provider, "route", leg.Route,
			"reason", reason, "deliveryPolicy", app.DeliveryPolicy)
	}
	if async {
		s.metrics.sends.WithLabelValues(app.Name, "accepted").Inc()
		return http.StatusAccepted, sendAnswer{RequestID: requestID, Status: "accepted"}, nil
	}
	timer := time.NewTimer(s.set.OTP.SyncTimeout.D())
	defer timer.Stop()
	select {
	case d := <-wait:
		s.metrics.latency.WithLabelValues(app.Name).Observe(time.Since(start).Seconds())
		if d.Status == "delivered" {
			s.metrics.sends.WithLabelValues(app.Name, "sent").Inc()
			return http.StatusOK, sendAnswer{RequestID: requestID, Status: "sent", DeliveryMode: d.DeliveryMode, Provider: d.Provider}, nil
		}
		if d.Reason == outcomeUnknown {
			// In doubt, not failed: the code stays valid (see onFailed).
			s.metrics.sends.WithLabelValues(app.Name, "pending").Inc()
			return http.StatusAccepted, sendAnswer{RequestID: requestID, Status: "pending"}, nil
		}
		// Revoke before answering, so a verify right after the 502 gets 410.
		if err := s.revoke(context.WithoutCancel(ctx), requestID, "delivery_failed"); err != nil {
			s.log.Warn("revoke after failed delivery", "requestId", requestID, "error", err)
		}
		s.metrics.sends.WithLabelValues(app.Name, "failed").Inc()
		return http.StatusBadGateway, smsFailed{Error: "sms_failed", RequestID: requestID,
			Detail: "the SMS could not be delivered (" + d.Reason + "); the code is revoked, send a new one"}, nil
	case <-timer.C:
	case <-ctx.Done(): // the caller left; the code is on its way all the same
	}
	s.metrics.sends.WithLabelValues(app.Name, "pending").Inc()
	return http.StatusAccepted, sendAnswer{RequestID: requestID, Status: "pending"}, nil
}

// smsFailed is the 502 body.
type smsFailed struct {
	Error     string `json:"error"`
	Detail    string `json:"detail"`
	RequestID string `json:"requestId"`
}
