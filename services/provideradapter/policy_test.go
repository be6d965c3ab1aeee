package provideradapter_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
)

func TestDLTSendDeliversOnTheDLTRouteWithFast2SMSWireFormat(t *testing.T) {
	r := startRig(t, "")
	resp := r.send(t, "bank")
	if resp.Status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	j := resp.JSON(t)
	if j["status"] != "sent" || j["deliveryMode"] != "dlt" || j["provider"] != "fast2sms" {
		t.Errorf("answer %s", resp.Body)
	}
	reqs := r.f2s.Requests()
	if len(reqs) != 1 {
		t.Fatalf("fast2sms got %d requests", len(reqs))
	}
	q := reqs[0]
	if q.Route != "dlt" || q.SenderID != "BANKOT" || q.Message != "161001" || q.Authorization != r.f2s.APIKey ||
		len(q.Numbers) != 10 || q.Flash != "0" || q.ContentType != "application/x-www-form-urlencoded" {
		t.Errorf("request %+v", q)
	}
	if vars := strings.Split(q.VariablesValues, "|"); len(vars) != 2 || len(vars[0]) != 10 || vars[1] != "5" {
		t.Errorf("variables_values %q, want code|5", q.VariablesValues)
	}
	rid := requestID(t, resp)
	es := r.events(t, rid)
	want := "otp_generated otp_dlt_dispatch dlt_payload_ready provider_response_received otp_delivery_completed"
	if types(es) != want {
		t.Errorf("events %s, want %s", types(es), want)
	}
	p := find[event.DLTPayloadReady](t, es)
	if p.SenderID != "BANKOT" || p.TemplateID != "1707100000000000001" || p.MessageID != "161001" ||
		strings.Join(p.Variables, "|") != "[code]|5" {
		t.Errorf("payload %+v", p)
	}
	c := find[event.OTPDeliveryCompleted](t, es)
	if c.Status != "delivered" || c.DeliveryMode != "dlt" || c.Attempts != 1 {
		t.Errorf("completed %+v", c)
	}
	if v := r.verify(t, rid, q.Code()); v.Status != http.StatusOK || v.JSON(t)["verified"] != true {
		t.Errorf("verify: %d %s", v.Status, v.Body)
	}
}

func TestDLTManualRouteSendsTheFilledTemplateWithTemplateAndEntityIDs(t *testing.T) {
	r := startRig(t, ", encoding: json")
	resp := r.send(t, "manual")
	if resp.Status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	q := r.f2s.Requests()[0]
	if q.Route != "dlt_manual" || q.TemplateID != "1707100000000000003" || q.EntityID != "1701100000000000001" ||
		q.ContentType != "application/json" || !strings.HasSuffix(q.Message, "is your Bank OTP. It is valid for 5 minutes. - BANKOT") {
		t.Errorf("request %+v", q)
	}
}

func TestTransientFailureIsRetriedWithinTheDeadline(t *testing.T) {
	r := startRig(t, "")
	r.f2s.Script(heraldtest.Fast2SMSServerError)
	resp := r.send(t, "bank")
	if resp.Status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	if n := len(r.f2s.Requests()); n != 2 {
		t.Fatalf("fast2sms got %d requests, want 2", n)
	}
	es := r.events(t, requestID(t, resp))
	f := find[event.ProviderResponseFailed](t, es)
	if f.Classification != "transient" || f.StatusCode != 503 || f.Attempt != 1 || f.Route != "dlt" {
		t.Errorf("failed response %+v", f)
	}
	ok := find[event.ProviderResponseReceived](t, es)
	if ok.Attempt != 2 {
		t.Errorf("received %+v", ok)
	}
	if c := find[event.OTPDeliveryCompleted](t, es); c.Attempts != 2 || c.Status != "delivered" {
		t.Errorf("completed %+v", c)
	}
}

func TestDLTOnlyFailuresAreHardFailuresThatRevokeTheCode(t *testing.T) {
	slow := heraldtest.Fast2SMSReply{HTTPStatus: 200, Delay: time.Second}
	tests := []struct {
		name       string
		script     []heraldtest.Fast2SMSReply
		calls      int
		reason     string
		class      string
		statusCode int
	}{
		{"invalid message id 424", []heraldtest.Fast2SMSReply{heraldtest.Fast2SMSInvalidMsgID}, 1, "template_rejected", "template_rejected", 400},
		{"invalid template 425", []heraldtest.Fast2SMSReply{heraldtest.Fast2SMSInvalidTemplate}, 1, "template_rejected", "template_rejected", 400},
		{"500 in the body with HTTP 400", []heraldtest.Fast2SMSReply{heraldtest.Fast2SMSDLTBlacklisted}, 1, "template_rejected", "template_rejected", 400},
		{"timeouts", []heraldtest.Fast2SMSReply{slow, slow, slow}, 3, "transient_exhausted", "transient", 0},
		{"5xx every time", []heraldtest.Fast2SMSReply{heraldtest.Fast2SMSServerError, heraldtest.Fast2SMSServerError, heraldtest.Fast2SMSServerError}, 3, "transient_exhausted", "transient", 503},
		{"412 invalid key", []heraldtest.Fast2SMSReply{heraldtest.Fast2SMSInvalidKey}, 1, "provider_auth", "provider_auth", 401},
		{"416 wallet", []heraldtest.Fast2SMSReply{heraldtest.Fast2SMSLowBalance}, 1, "payment_required", "payment_required", 400},
	}
	r := startRig(t, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(r.f2s.Requests())
			r.f2s.Script(tt.script...)
			resp := r.send(t, "bank")
			if resp.Status != http.StatusBadGateway || resp.JSON(t)["error"] != "sms_failed" {
				t.Fatalf("status %d: %s", resp.Status, resp.Body)
			}
			reqs := r.f2s.Requests()[before:]
			if len(reqs) != tt.calls {
				t.Errorf("fast2sms got %d calls, want %d", len(reqs), tt.calls)
			}
			rid := requestID(t, resp)
			es := r.events(t, rid)
			h := find[event.OTPDLTHardFailure](t, es)
			if h.Reason != tt.reason || h.Classification != tt.class || h.StatusCode != tt.statusCode ||
				h.DeliveryPolicy != "dlt_only" || h.Route != "dlt" || h.Provider != "fast2sms" {
				t.Errorf("hard failure %+v", h)
			}
			if fb := all[event.OTPDLTFallback](es); len(fb) != 0 {
				t.Errorf("a dlt_only app fell back: %+v", fb)
			}
			if c := find[event.OTPDeliveryCompleted](t, es); c.Status != "failed" || c.Reason != tt.reason {
				t.Errorf("completed %+v", c)
			}
			find[event.OTPNotificationFailed](t, es)
			f := all[event.ProviderResponseFailed](es)
			if last := f[len(f)-1]; last.Classification != tt.class {
				t.Errorf("last provider answer %+v", last)
			}
			if v := r.verify(t, rid, reqs[0].Code()); v.Status != http.StatusGone || v.JSON(t)["error"] != "revoked" {
				t.Errorf("verify after a failed send: %d %s", v.Status, v.Body)
			}
			es = r.waitFor(t, rid, "otp_revoked")
			if rv := find[event.OTPRevoked](t, es); rv.Reason != "delivery_failed" {
				t.Errorf("revoked %+v", rv)
			}
		})
	}
}

func TestDLTWithFallbackMovesToTheQuickRoute(t *testing.T) {
	tests := []struct {
		name   string
		script []heraldtest.Fast2SMSReply
		reason string
		hard   bool
	}{
		{"template rejected 424", []heraldtest.Fast2SMSReply{heraldtest.Fast2SMSInvalidMsgID}, "template_rejected", true},
		{"template rejected 425", []heraldtest.Fast2SMSReply{heraldtest.Fast2SMSInvalidTemplate}, "template_rejected", true},
		{"blacklisted at DLT", []heraldtest.Fast2SMSReply{heraldtest.Fast2SMSDLTBlacklisted}, "template_rejected", true},
		{"5xx exhausted", []heraldtest.Fast2SMSReply{heraldtest.Fast2SMSServerError, heraldtest.Fast2SMSServerError, heraldtest.Fast2SMSServerError}, "transient_exhausted", false},
	}
	r := startRig(t, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(r.f2s.Requests())
			r.f2s.Script(tt.script...)
			resp := r.send(t, "shop")
			if resp.Status != http.StatusOK {
				t.Fatalf("status %d: %s", resp.Status, resp.Body)
			}
			if j := resp.JSON(t); j["deliveryMode"] != "q" || j["provider"] != "fast2sms" {
				t.Errorf("answer %s", resp.Body)
			}
			reqs := r.f2s.Requests()[before:]
			last := reqs[len(reqs)-1]
			if last.Route != "q" || !strings.HasSuffix(last.Message, "is your shop code") {
				t.Errorf("fallback request %+v", last)
			}
			for _, q := range reqs[:len(reqs)-1] {
				if q.Route != "dlt" {
					t.Errorf("request before the fallback on route %s", q.Route)
				}
			}
			if tt.hard && len(reqs) != 2 {
				t.Errorf("a rejected template was retried: %d requests", len(reqs))
			}
			rid := requestID(t, resp)
			es := r.events(t, rid)
			fb := all[event.OTPDLTFallback](es)
			if len(fb) != 1 || fb[0].Reason != tt.reason || fb[0].FromRoute != "dlt" || fb[0].Route != "q" || fb[0].Leg != 1 {
				t.Errorf("fallback %+v", fb)
			}
			if hf := all[event.OTPDLTHardFailure](es); (len(hf) == 1) != tt.hard {
				t.Errorf("hard failures %+v, want one: %v", hf, tt.hard)
			}
			if c := find[event.OTPDeliveryCompleted](t, es); c.Status != "delivered" || c.DeliveryMode != "q" {
				t.Errorf("completed %+v", c)
			}
			if v := r.verify(t, rid, last.Code()); v.Status != http.StatusOK {
				t.Errorf("verify: %d %s", v.Status, v.Body)
			}
		})
	}
}

func TestFallbackMovesToTheNextProviderWhenTheQuickRouteFailsToo(t *testing.T) {
	r := startRig(t, "")
	r.f2s.Script(heraldtest.Fast2SMSInvalidTemplate, heraldtest.Fast2SMSLowBalance)
	resp := r.send(t, "shop")
	if resp.Status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	if j := resp.JSON(t); j["deliveryMode"] != "sms" || j["provider"] != "twilio" {
		t.Errorf("answer %s", resp.Body)
	}
	tw := r.tw.Requests()
	if len(tw) != 1 || !strings.HasPrefix(tw[0].To, "+9198") || tw[0].From != "+15005550006" {
		t.Fatalf("twilio requests %+v", tw)
	}
	es := r.events(t, requestID(t, resp))
	fb := all[event.OTPDLTFallback](es)
	if len(fb) != 2 || fb[1].FromProvider != "fast2sms" || fb[1].Provider != "twilio" || fb[1].Reason != "payment_required" {
		t.Errorf("fallbacks %+v", fb)
	}
}

func TestDLTGloballyOffSendsEveryAppOnTheQuickRoute(t *testing.T) {
	t.Setenv("OTP_DLT_ENABLED", "false")
	r := startRig(t, "")
	resp := r.send(t, "bank") // dlt_only: the quick route only while DLT is off
	if resp.Status != http.StatusOK || resp.JSON(t)["deliveryMode"] != "q" {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	if q := r.f2s.Requests(); len(q) != 1 || q[0].Route != "q" {
		t.Errorf("requests %+v", q)
	}
	es := r.events(t, requestID(t, resp))
	if types(es) != "otp_generated otp_dlt_dispatch otp_dlt_fallback dlt_payload_ready provider_response_received otp_delivery_completed" {
		t.Errorf("events %s", types(es))
	}
	fb := find[event.OTPDLTFallback](t, es)
	if fb.Reason != "dlt_inactive" || fb.Route != "q" || fb.DeliveryPolicy != "dlt_only" || fb.Sealed != "" {
		t.Errorf("fallback %+v", fb)
	}
	if d := find[event.OTPDLTDispatch](t, es); d.Reason != "dlt_inactive" || d.Route != "q" || d.TemplateID != "" {
		t.Errorf("dispatch %+v", d)
	}
	// One publisher per type: the dispatcher dispatches, the adapter falls back.
	for _, e := range es {
		if (e.Type == "otp_dlt_dispatch" && e.Source != "herald/dispatcher") || (e.Type == "otp_dlt_fallback" && e.Source != "herald/provider-adapter") {
			t.Errorf("%s published by %s", e.Type, e.Source)
		}
	}
	st := heraldtest.Events(t, r.Bus, "EVENTS", "events.otp_dlt_activation_status")
	if a, _ := event.As[event.OTPDLTActivationStatus](st[0]); a.DLTEnabled || a.Source != "env" {
		t.Errorf("activation status %+v", a)
	}
}

func TestClassificationIsConfigurablePerProvider(t *testing.T) {
	// This account's provider answers HTTP 401 when the subscription is unpaid.
	r := startRig(t, `, classify: {"412": payment_required}`)
	r.f2s.Script(heraldtest.Fast2SMSInvalidKey)
	resp := r.send(t, "bank")
	if resp.Status != http.StatusBadGateway {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	f := find[event.ProviderResponseFailed](t, r.events(t, requestID(t, resp)))
	if f.Classification != "payment_required" || f.StatusCode != 401 || f.ProviderCode != "412" {
		t.Errorf("failed response %+v", f)
	}
}

func TestQuickOnlyAppSendsThroughTwilio(t *testing.T) {
	r := startRig(t, "")
	resp := r.Do(t, "POST", "/v1/otp/send", map[string]string{"app": "global", "phone": "+14155550123"})
	if resp.Status != http.StatusOK || resp.JSON(t)["provider"] != "twilio" {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	es := r.events(t, requestID(t, resp))
	if fb := find[event.OTPDLTFallback](t, es); fb.Reason != "quick_only" || fb.Route != "sms" {
		t.Errorf("fallback %+v", fb)
	}
	if d := find[event.OTPDLTDispatch](t, es); d.Reason != "quick_only" || d.Provider != "twilio" || d.Route != "sms" {
		t.Errorf("dispatch %+v", d)
	}
	if ok := find[event.ProviderResponseReceived](t, es); ok.StatusCode != 201 || !strings.HasPrefix(ok.ProviderRequestID, "SM") {
		t.Errorf("received %+v", ok)
	}
}

func TestTwilioErrorsAreClassified(t *testing.T) {
	r := startRig(t, "")
	r.tw.Script(heraldtest.TwilioReply{HTTPStatus: 400, Code: 21211, Message: "The 'To' number +14155550123 is not a valid phone number."})
	resp := r.Do(t, "POST", "/v1/otp/send", map[string]string{"app": "global", "phone": "+14155550123"})
	if resp.Status != http.StatusBadGateway {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	f := find[event.ProviderResponseFailed](t, r.events(t, requestID(t, resp)))
	if f.Classification != "recipient_invalid" || f.ProviderCode != "21211" || strings.Contains(f.Error, "+14155550123") {
		t.Errorf("failed response %+v (the number must be masked)", f)
	}
}

func TestCircuitOpensAfterConsecutiveTransientFailuresAndSkipsTheProvider(t *testing.T) {
	r := startRig(t, ", breaker: {failures: 2, openFor: 1m}")
	r.f2s.Script(heraldtest.Fast2SMSServerError, heraldtest.Fast2SMSServerError)
	resp := r.send(t, "bank")
	if resp.Status != http.StatusBadGateway {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	if n := len(r.f2s.Requests()); n != 2 {
		t.Fatalf("fast2sms got %d calls, want 2 before the circuit opened", n)
	}
	es := r.events(t, requestID(t, resp))
	if h := find[event.OTPDLTHardFailure](t, es); h.Reason != "circuit_open" {
		t.Errorf("hard failure %+v", h)
	}
	// While open, a DLT-with-fallback app goes straight to its next leg
	// without calling the failing route.
	resp = r.send(t, "shop")
	if resp.Status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	reqs := r.f2s.Requests()
	if len(reqs) != 3 || reqs[2].Route != "q" {
		t.Errorf("requests after the circuit opened: %+v", reqs[2:])
	}
	if fb := find[event.OTPDLTFallback](t, r.events(t, requestID(t, resp))); fb.Reason != "circuit_open" {
		t.Errorf("fallback %+v", fb)
	}
	m := r.Do(t, "GET", "/metrics", nil)
	for _, want := range []string{
		`herald_provider_circuit_state{provider="fast2sms",route="dlt",state="open"} 1`,
		`herald_provider_circuit_state{provider="fast2sms",route="dlt",state="half_open"} 0`,
		`herald_provider_circuit_state{provider="fast2sms",route="dlt",state="closed"} 0`,
	} {
		if !strings.Contains(string(m.Body), want) {
			t.Errorf("%s not in /metrics", want)
		}
	}
}
