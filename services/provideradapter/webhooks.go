package provideradapter

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/sms"
)

const maxWebhookBody = 64 << 10

func (a *adapter) routes() []api.Route {
	return append([]api.Route{
		{Pattern: "POST /v1/webhooks/fast2sms", Access: api.Signed, Handler: http.HandlerFunc(a.fast2smsReceipt)},
		{Pattern: "POST /v1/webhooks/twilio", Access: api.Signed, Handler: http.HandlerFunc(a.twilioReceipt)},
	}, a.simulatorRoutes()...)
}

// receipt is a delivery receipt read from a provider's webhook.
type receipt struct {
	provider, messageID, status, errorCode, scrubCode string
}

// readForm reads a form or JSON body into a flat map of strings.
func readForm(r *http.Request) (url.Values, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, maxWebhookBody)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/json" {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			return nil, err
		}
		v := url.Values{}
		for k, x := range m {
			switch t := x.(type) {
			case string:
				v.Set(k, t)
			case float64, bool, json.Number:
				b, _ := json.Marshal(t)
				v.Set(k, string(b))
			}
		}
		return v, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	return r.PostForm, nil
}

// fast2smsReceipt serves POST /v1/webhooks/fast2sms. Fast2SMS does not sign
// its webhooks, so the URL given to Fast2SMS must carry the secret
// providers.fast2sms.webhookToken (FAST2SMS_WEBHOOK_TOKEN) as ?token=;
// without one configured every receipt is refused (503), never recorded
// unchecked. Fields read (form or JSON): request_id, status, error_code (or
// status_code), and the DLT scrub code as dlt_error_code (or scrub_code).
func (a *adapter) fast2smsReceipt(w http.ResponseWriter, r *http.Request) {
	tok := a.set.Providers.Fast2SMS.WebhookToken
	if tok == "" {
		a.metrics.receipts.WithLabelValues(sms.Fast2SMS, "forbidden").Inc()
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, "webhook_not_configured",
			"set FAST2SMS_WEBHOOK_TOKEN and give Fast2SMS this URL with ?token=<it>; receipts are refused until then"))
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("token")), []byte(tok)) != 1 {
		a.metrics.receipts.WithLabelValues(sms.Fast2SMS, "forbidden").Inc()
		api.WriteError(w, api.Errorf(http.StatusForbidden, "forbidden", "missing or wrong webhook token"))
		return
	}
	f, err := readForm(r)
	if err != nil {
		a.badReceipt(w, sms.Fast2SMS, "the body is not a form or a JSON object")
		return
	}
	rc := receipt{provider: sms.Fast2SMS, messageID: f.Get("request_id"), status: f.Get("status"),
		errorCode: first(f.Get("error_code"), f.Get("status_code")), scrubCode: first(f.Get("dlt_error_code"), f.Get("scrub_code"))}
	a.recordReceipt(w, r, rc)
}

// twilioReceipt serves POST /v1/webhooks/twilio, Twilio's StatusCallback.
// X-Twilio-Signature must be valid for the configured statusCallback URL —
// the public URL Twilio posts to, never one rebuilt from the request's Host,
// which the caller chooses. Without that URL and the auth token every
// callback is refused (503); a bad signature is answered 403. Nothing is
// recorded in either case.
func (a *adapter) twilioReceipt(w http.ResponseWriter, r *http.Request) {
	tw := a.set.Providers.Twilio
	if tw.StatusCallback == "" || tw.AuthToken == "" {
		a.metrics.receipts.WithLabelValues(sms.Twilio, "forbidden").Inc()
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, "webhook_not_configured",
			"set providers.twilio.statusCallback (TWILIO_STATUS_CALLBACK) to this endpoint's public URL and TWILIO_AUTH_TOKEN; callbacks are refused until then"))
		return
	}
	f, err := readForm(r)
	if err != nil {
		a.badReceipt(w, sms.Twilio, "the body is not a form")
		return
	}
	full := tw.StatusCallback
	if !sms.ValidTwilioSignature(tw.AuthToken, full, f, r.Header.Get("X-Twilio-Signature")) {
		a.metrics.receipts.WithLabelValues(sms.Twilio, "forbidden").Inc()
		a.log.Warn("twilio webhook with a bad signature refused", "remote", r.RemoteAddr)
		api.WriteError(w, api.Errorf(http.StatusForbidden, "invalid_signature", "X-Twilio-Signature does not match"))
		return
	}
	a.recordReceipt(w, r, receipt{provider: sms.Twilio, messageID: f.Get("MessageSid"), status: f.Get("MessageStatus"),
		errorCode: f.Get("ErrorCode")})
}

func (a *adapter) badReceipt(w http.ResponseWriter, provider, detail string) {
	a.metrics.receipts.WithLabelValues(provider, "invalid").Inc()
	api.WriteError(w, api.Errorf(http.StatusBadRequest, "invalid_receipt", "%s", detail))
}

func (a *adapter) recordReceipt(w http.ResponseWriter, r *http.Request, rc receipt) {
	if rc.messageID == "" || rc.status == "" || len(rc.messageID) > 128 || len(rc.status) > 64 ||
		len(rc.errorCode) > 64 || len(rc.scrubCode) > 64 {
		a.badReceipt(w, rc.provider, "the receipt needs a message id and a status")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	ref, err := a.findRef(ctx, rc.provider, rc.messageID)
	if err != nil {
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, "unavailable", "the delivery ledger did not answer; retry"))
		return
	}
	if ref == nil {
		// Answered 200 so the provider stops retrying a message Herald never sent.
		a.metrics.receipts.WithLabelValues(rc.provider, "unknown").Inc()
		api.WriteJSON(w, http.StatusOK, map[string]any{"recorded": false, "detail": "no message with this id was sent by Herald"})
		return
	}
	status, class := readStatus(rc, a.set.Providers.Common(rc.provider).Classify)
	d := event.OTPDeliveryReceipt{App: ref.App, Provider: rc.provider, Route: ref.Route, Status: status,
		ProviderStatus: rc.status, ProviderRequestID: rc.messageID, ErrorCode: rc.errorCode, DLTScrubCode: rc.scrubCode,
		Classification: class}
	id := "receipt." + rc.provider + "." + keySafe(rc.messageID) + "." + keySafe(strings.ToLower(rc.status))
	e := event.New(source, d, event.WithRequestID(ref.RequestID), event.WithID(id))
	if _, err := a.bus.Publish(ctx, e); err != nil {
		var se *event.SchemaError
		if errors.As(err, &se) {
			a.badReceipt(w, rc.provider, se.Error())
			return
		}
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, "unavailable", "the event log did not confirm the receipt; retry"))
		return
	}
	a.metrics.receipts.WithLabelValues(rc.provider, "recorded").Inc()
	a.log.Info("delivery receipt", "event", "otp_delivery_receipt", "requestId", ref.RequestID, "app", ref.App,
		"provider", rc.provider, "status", status, "providerStatus", rc.status, "errorCode", rc.errorCode, "dltScrubCode", rc.scrubCode)
	api.WriteJSON(w, http.StatusOK, map[string]any{"recorded": true, "requestId": ref.RequestID})
}

// readStatus maps a provider's status word to delivered, failed or pending,
// and classifies failures.
func readStatus(rc receipt, overrides map[string]string) (string, string) {
	s := strings.ToLower(rc.status)
	switch s {
	case "delivered", "delivrd", "read", "success":
		return "delivered", ""
	case "queued", "accepted", "sending", "sent", "submitted", "pending", "scheduled", "enroute":
		return "pending", ""
	}
	if rc.scrubCode != "" {
		return "failed", string(sms.TemplateRejected)
	}
	var c *sms.Classifier
	if rc.provider == sms.Twilio {
		c = sms.NewClassifier(sms.TwilioDefaults(), overrides)
	} else {
		c = sms.NewClassifier(sms.Fast2SMSDefaults(), overrides)
	}
	class := sms.Unknown
	if rc.errorCode != "" {
		if cl := c.Classify(400, rc.errorCode); cl != sms.BadRequest {
			class = cl
		}
	}
	return "failed", string(class)
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
