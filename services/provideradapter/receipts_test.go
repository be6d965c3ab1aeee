package provideradapter_test

import (
	"net/http"
	"testing"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
)

func TestTwilioReceiptsAreVerifiedAgainstTheConfiguredURLAndCorrelated(t *testing.T) {
	r := startRig(t, "")
	resp := r.Do(t, "POST", "/v1/otp/send", map[string]string{"app": "global", "phone": "+14155550123"})
	if resp.Status != 200 {
		t.Fatalf("send: %d %s", resp.Status, resp.Body)
	}
	rid := requestID(t, resp)
	sid := r.tw.Requests()[0].SID
	if got := r.tw.Requests()[0].StatusCallback; got != twilioPublicURL {
		t.Errorf("Twilio was given StatusCallback %q, want %q", got, twilioPublicURL)
	}
	hook := r.URL + "/v1/webhooks/twilio"
	refused := map[string]*heraldtest.Response{
		"bad signature": r.tw.StatusCallbackVia(t, hook, twilioPublicURL, sid, "delivered", "", "bm90IGEgc2lnbmF0dXJl"),
		// Validly signed with the auth token, but for the URL the request
		// claims (its Host), not the configured one.
		"signed for the request's Host": r.tw.StatusCallback(t, hook, sid, "delivered", "", ""),
		"signed for a forged host":      r.tw.StatusCallbackVia(t, hook, "https://evil.example/v1/webhooks/twilio", sid, "delivered", "", ""),
	}
	for name, got := range refused {
		if got.Status != http.StatusForbidden || got.JSON(t)["error"] != "invalid_signature" {
			t.Errorf("%s: %d %s", name, got.Status, got.Body)
		}
	}
	if n := r.count(t, "events.otp_delivery_receipt"); n != 0 {
		t.Fatalf("%d receipts recorded from forged callbacks", n)
	}

	ok := r.twilioCallback(t, sid, "undelivered", "30003")
	if ok.Status != 200 || ok.JSON(t)["requestId"] != rid {
		t.Fatalf("signed callback: %d %s", ok.Status, ok.Body)
	}
	rc := find[event.OTPDeliveryReceipt](t, r.waitFor(t, rid, "otp_delivery_receipt"))
	if rc.Status != "failed" || rc.ProviderStatus != "undelivered" || rc.ErrorCode != "30003" ||
		rc.Classification != "recipient_invalid" || rc.ProviderRequestID != sid || rc.App != "global" {
		t.Errorf("receipt %+v", rc)
	}
	if again := r.twilioCallback(t, sid, "undelivered", "30003"); again.Status != 200 {
		t.Errorf("repeated callback: %d", again.Status)
	}
	if n := r.count(t, "events.otp_delivery_receipt"); n != 1 {
		t.Errorf("%d receipts for one repeated callback", n)
	}
}

func TestTwilioReceiptsAreRefusedWithoutAConfiguredPublicURL(t *testing.T) {
	f2s, tw := heraldtest.NewFast2SMS(t), heraldtest.NewTwilio(t)
	t.Setenv("TWILIO_AUTH_TOKEN", tw.AuthToken)
	a := apptest.StartApp(t, apptest.WithConfig(`
providers:
  fast2sms: {baseURL: `+f2s.URL+`}
  twilio: {baseURL: `+tw.URL+`, accountSid: `+tw.AccountSID+`, from: "+15005550006"}
apps:
  global: {deliveryPolicy: quick_only, providers: [twilio]}
`))
	if resp := a.Do(t, "POST", "/v1/otp/send", map[string]string{"app": "global", "phone": "+14155550123"}); resp.Status != 200 {
		t.Fatalf("send: %d %s", resp.Status, resp.Body)
	}
	hook := a.URL + "/v1/webhooks/twilio"
	got := tw.StatusCallback(t, hook, tw.Requests()[0].SID, "delivered", "", "")
	if got.Status != http.StatusServiceUnavailable || got.JSON(t)["error"] != "webhook_not_configured" {
		t.Errorf("without statusCallback: %d %s", got.Status, got.Body)
	}
	if n := len(heraldtest.Events(t, a.Bus, "EVENTS", "events.otp_delivery_receipt")); n != 0 {
		t.Errorf("%d receipts recorded", n)
	}
}

func TestFast2SMSReceiptCarriesTheDLTScrubCode(t *testing.T) {
	r := startRig(t, "")
	resp := r.send(t, "bank")
	if resp.Status != 200 {
		t.Fatalf("send: %d %s", resp.Status, resp.Body)
	}
	rid := requestID(t, resp)
	es := r.events(t, rid)
	msgID := find[event.ProviderResponseReceived](t, es).ProviderRequestID
	hook := r.URL + "/v1/webhooks/fast2sms?token=" + fast2smsToken
	got := heraldtest.Do(t, "POST", hook, map[string]string{"request_id": msgID, "status": "DLT_REJECTED",
		"number": "9812345678", "dlt_error_code": "1703"})
	if got.Status != 200 || got.JSON(t)["requestId"] != rid {
		t.Fatalf("receipt: %d %s", got.Status, got.Body)
	}
	rc := find[event.OTPDeliveryReceipt](t, r.waitFor(t, rid, "otp_delivery_receipt"))
	if rc.Status != "failed" || rc.DLTScrubCode != "1703" || rc.Classification != "template_rejected" || rc.Route != "dlt" {
		t.Errorf("receipt %+v", rc)
	}
	unknown := heraldtest.Do(t, "POST", hook, map[string]string{"request_id": "nope", "status": "Delivered"})
	if unknown.Status != 200 || unknown.JSON(t)["recorded"] != false {
		t.Errorf("unknown message: %d %s", unknown.Status, unknown.Body)
	}
	if bad := heraldtest.Do(t, "POST", hook, map[string]string{"status": "Delivered"}); bad.Status != 400 {
		t.Errorf("no request_id: %d %s", bad.Status, bad.Body)
	}
}

func TestFast2SMSReceiptNeedsTheConfiguredToken(t *testing.T) {
	r := startRig(t, "")
	rid := requestID(t, r.send(t, "bank"))
	msgID := find[event.ProviderResponseReceived](t, r.events(t, rid)).ProviderRequestID
	body := map[string]string{"request_id": msgID, "status": "Delivered"}
	for name, path := range map[string]string{
		"without token":            "/v1/webhooks/fast2sms",
		"wrong token":              "/v1/webhooks/fast2sms?token=guess",
		"token prefix":             "/v1/webhooks/fast2sms?token=" + fast2smsToken[:4],
		"token under another name": "/v1/webhooks/fast2sms?tok=" + fast2smsToken,
	} {
		if got := r.Do(t, "POST", path, body); got.Status != http.StatusForbidden {
			t.Errorf("%s: %d %s", name, got.Status, got.Body)
		}
	}
	if n := r.count(t, "events.otp_delivery_receipt"); n != 0 {
		t.Fatalf("%d receipts recorded without the token", n)
	}
	if got := r.Do(t, "POST", "/v1/webhooks/fast2sms?token="+fast2smsToken, body); got.Status != 200 || got.JSON(t)["recorded"] != true {
		t.Errorf("with token: %d %s", got.Status, got.Body)
	}
}

func TestFast2SMSReceiptsAreRefusedWhenNoTokenIsConfigured(t *testing.T) {
	f2s, tw := heraldtest.NewFast2SMS(t), heraldtest.NewTwilio(t)
	t.Setenv("FAST2SMS_API_KEY", f2s.APIKey)
	t.Setenv("TWILIO_AUTH_TOKEN", tw.AuthToken)
	r := &rig{App: apptest.StartApp(t, apptest.WithConfig(rigConfig(f2s, tw, ""))), f2s: f2s, tw: tw}
	rid := requestID(t, r.send(t, "bank"))
	msgID := find[event.ProviderResponseReceived](t, r.events(t, rid)).ProviderRequestID
	for _, path := range []string{"/v1/webhooks/fast2sms", "/v1/webhooks/fast2sms?token="} {
		got := r.Do(t, "POST", path, map[string]string{"request_id": msgID, "status": "Delivered"})
		if got.Status != http.StatusServiceUnavailable || got.JSON(t)["error"] != "webhook_not_configured" {
			t.Errorf("%s: %d %s", path, got.Status, got.Body)
		}
	}
	if n := r.count(t, "events.otp_delivery_receipt"); n != 0 {
		t.Errorf("%d receipts recorded with no token configured", n)
	}
}
