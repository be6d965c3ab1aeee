package provideradapter_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/pkg/logging"
	"github.com/heraldhq/herald/services/herald/app/apptest"
)

// phoneForms are the ways a number can be written: E.164, without the '+',
// and (India) the 10-digit national number Fast2SMS is sent.
func phoneForms(p string) []string {
	forms := []string{p, strings.TrimPrefix(p, "+")}
	if n, ok := strings.CutPrefix(p, "+91"); ok {
		forms = append(forms, n)
	}
	return forms
}

func TestNoFullPhoneNumberInAnyStreamBucketOrLog(t *testing.T) {
	for _, dlt := range []bool{true, false} {
		t.Run(fmt.Sprintf("OTP_DLT_ENABLED=%v", dlt), func(t *testing.T) {
			t.Setenv("OTP_DLT_ENABLED", fmt.Sprint(dlt))
			var logs bytes.Buffer
			r := startRig(t, "", apptest.WithLogOutput(&logs))
			var phones []string
			seq := 0
			send := func(app string, header ...string) (string, *heraldtest.Response) {
				seq++
				p := fmt.Sprintf("+9197531%05d", seq)
				if app == "global" {
					p = fmt.Sprintf("+1415739%04d", seq)
				}
				phones = append(phones, p)
				resp := r.Do(t, "POST", "/v1/otp/send", map[string]string{"app": app, "phone": p}, header...)
				return requestID(t, resp), resp
			}
			var failed []string
			expect := func(status int) func(string, *heraldtest.Response) {
				return func(rid string, resp *heraldtest.Response) {
					if resp.Status != status {
						t.Fatalf("send %s: %d %s, want %d", rid, resp.Status, resp.Body, status)
					}
					if status == http.StatusBadGateway {
						failed = append(failed, rid)
					}
				}
			}
			// Every policy, provider failures and fallbacks, hard failures.
			expect(200)(send("bank")) // dlt_only (quick route while DLT is off)
			r.f2s.Script(heraldtest.Fast2SMSServerError)
			expect(200)(send("bank")) // retried
			r.f2s.Script(heraldtest.Fast2SMSInvalidTemplate)
			expect(502)(send("bank")) // hard failure
			// A provider that echoes the national number in its error.
			r.f2s.Script(heraldtest.Fast2SMSReply{HTTPStatus: 400, Code: 411, Message: fmt.Sprintf("Invalid Numbers: 97531%05d", seq+1)})
			expect(502)(send("bank"))
			r.f2s.Script(heraldtest.Fast2SMSInvalidTemplate)
			expect(200)(send("shop")) // dlt_with_fallback: next leg
			if dlt {
				r.f2s.Script(heraldtest.Fast2SMSInvalidTemplate, heraldtest.Fast2SMSLowBalance)
			} else {
				r.f2s.Script(heraldtest.Fast2SMSLowBalance)
			}
			expect(200)(send("shop")) // on to twilio
			expect(200)(send("manual"))
			expect(200)(send("limited"))                            // a per-phone limit in OTP_LIMITS
			expect(200)(send("bank", "Idempotency-Key", "order-1")) // an idempotency record
			expect(200)(send("global"))                             // quick_only through twilio
			r.tw.Script(heraldtest.TwilioReply{HTTPStatus: 400, Code: 21211,
				Message: fmt.Sprintf("The 'To' number +1415739%04d is not a valid phone number.", seq+1)})
			expect(502)(send("global"))
			for _, q := range r.tw.Requests() {
				if q.SID != "" {
					r.tw.StatusCallback(t, r.URL+"/v1/webhooks/twilio", q.SID, "delivered", "", "")
				}
			}
			// A dead letter: a dispatch re-routed by someone who read it.
			rid, resp := send("bank")
			expect(200)(rid, resp)
			d := find[event.OTPDLTDispatch](t, r.events(t, rid))
			d.Route = "dlt_manual"
			if reason, _ := r.deadLetter(t, r.publishForged(t, "otp_dlt_dispatch", rid, d)); reason == "" {
				t.Fatal("the forged dispatch was not dead-lettered")
			}
			for _, rid := range failed {
				r.waitFor(t, rid, "otp_revoked")
			}
			if n := len(phones); n != 12 {
				t.Fatalf("%d sends", n)
			}

			where := r.StoredText(t)
			for _, must := range []string{"EVENTS", "DLQ", "KV_OTP_CODES", "KV_OTP_DELIVERY", "KV_OTP_LIMITS", "KV_OTP_IDEMPOTENCY"} {
				if where[must] == "" {
					t.Errorf("%s holds nothing: the check would miss it", must)
				}
			}
			where["logs"] = logs.String()
			where["metrics"] = string(r.Do(t, "GET", "/metrics", nil).Body)
			if !strings.Contains(where["logs"], `"event":"otp_dispatch_refused"`) || !strings.Contains(where["logs"], logging.MaskPhone(phones[0])) {
				t.Fatalf("the logs were not captured:\n%s", where["logs"])
			}
			for place, text := range where {
				for _, p := range phones {
					for _, form := range phoneForms(p) {
						if i := strings.Index(text, form); i >= 0 {
							t.Errorf("%s (%s) in %s: …%s…", form, p, place, text[max(i-200, 0):min(i+50, len(text))])
						}
					}
				}
			}
		})
	}
}
