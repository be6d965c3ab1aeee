package provideradapter_test

import (
	"net/http"
	"testing"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
)

func TestTwilioReceiptsAreVerifiedAndCorrelated(t *testing.T) {
	r := startRig(t, "")
	resp := r.Do(t, "POST", "/v1/otp/send", map[string]string{"app": "global", "phone": "+14155550123"})
	if resp.Status != 200 {
		t.Fatalf("send: %d %s", resp.Status, resp.Body)
	}
	rid := requestID(t, resp)
	sid := r.tw.Requests()[0].SID
	hook := r.URL + "/v1/webhooks/twilio"

	bad := r.tw.StatusCallback(t, hook, sid, "delivered", "", "bm90IGEgc2lnbmF0dXJl")
	if bad.Status != http.StatusForbidden {
		t.Errorf("bad signature: %d %s", bad.Status, bad.Body)
	}
	if n := r.count(t, "events.otp_delivery_receipt"); n != 0 {
		t.Fatalf("%d receipts recorded from a forged callback", n)
	}

	ok := r.tw.StatusCallback(t, hook, sid, "undelivered", "30003", "")
	if ok.Status != 200 || ok.JSON(t)["requestId"] != rid {
		t.Fatalf("signed callback: %d %s", ok.Status, ok.Body)
	}
	rc := find[event.OTPDeliveryReceipt](t, r.waitFor(t, rid, "otp_delivery_receipt"))
	if rc.Status != "failed" || rc.ProviderStatus != "undelivered" || rc.ErrorCode != "30003" ||
		rc.Classification != "recipient_invalid" || rc.ProviderRequestID != sid || rc.App != "global" {
		t.Errorf("receipt %+v", rc)
	}
	if again := r.tw.StatusCallback(t, hook, sid, "undelivered", "30003", ""); again.Status != 200 {
		t.Errorf("repeated callback: %d", again.Status)
	}
	if n := r.count(t, "events.otp_delivery_receipt"); n != 1 {
		t.Errorf("%d receipts for one repeated callback", n)
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
	hook := r.URL + "/v1/webhooks/fast2sms"
	got := r.Do(t, "POST", "/v1/webhooks/fast2sms", map[string]string{"request_id": msgID, "status": "DLT_REJECTED",
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

func TestFast2SMSReceiptNeedsTheTokenWhenOneIsConfigured(t *testing.T) {
	t.Setenv("FAST2SMS_WEBHOOK_TOKEN", "s3cret")
	r := startRig(t, "")
	body := map[string]string{"request_id": "x", "status": "Delivered"}
	if got := r.Do(t, "POST", "/v1/webhooks/fast2sms", body); got.Status != http.StatusForbidden {
		t.Errorf("without token: %d %s", got.Status, got.Body)
	}
	if got := r.Do(t, "POST", "/v1/webhooks/fast2sms?token=s3cret", body); got.Status != 200 {
		t.Errorf("with token: %d %s", got.Status, got.Body)
	}
}
