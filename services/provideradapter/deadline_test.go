package provideradapter_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
)

// Issue 9: the delivery deadline is split between the legs, so a DLT route
// that times out leaves the fallback its time: with Fast2SMS timing out on
// every call (each one as long as the provider timeout allows), a
// dlt_with_fallback send still reaches Twilio within otp.deliveryTimeout.
func TestATimingOutDLTLegLeavesTheFallbackItsTime(t *testing.T) {
	f2s, tw := heraldtest.NewFast2SMS(t), heraldtest.NewTwilio(t)
	t.Setenv("FAST2SMS_API_KEY", f2s.APIKey)
	t.Setenv("TWILIO_AUTH_TOKEN", tw.AuthToken)
	t.Setenv("FAST2SMS_WEBHOOK_TOKEN", fast2smsToken)
	// deliveryTimeout 3s; a Fast2SMS call may take 1.5s and is retried 3
	// times: on its own the DLT leg would use the whole deadline.
	cfg := strings.Replace(rigConfig(f2s, tw, ""), "timeout: 300ms, retries: 2", "timeout: 1500ms, retries: 3", 1)
	r := &rig{App: apptest.StartApp(t, apptest.WithConfig(cfg)), f2s: f2s, tw: tw}
	hang := heraldtest.Fast2SMSReply{HTTPStatus: 200, Delay: 10 * time.Second}
	for range 3 {
		r.f2s.Script(hang, hang, hang, hang)
		start := time.Now()
		resp := r.send(t, "shop")
		took := time.Since(start)
		if resp.Status != http.StatusOK {
			t.Fatalf("send: %d %s after %v", resp.Status, resp.Body, took)
		}
		es := r.events(t, requestID(t, resp))
		c := find[event.OTPDeliveryCompleted](t, es)
		if c.Provider != "twilio" || c.Status != "delivered" {
			t.Fatalf("completed %+v", c)
		}
		// The contract, read from the log: completed within the delivery
		// timeout of the send's generation.
		var generated, completed time.Time
		for _, e := range es {
			switch e.Type {
			case "otp_generated":
				generated = e.Time
			case "otp_delivery_completed":
				completed = e.Time
			}
		}
		if d := completed.Sub(generated); d > 3*time.Second {
			t.Errorf("delivered by the fallback %v after generation; the delivery timeout is 3s", d)
		}
		t.Logf("delivered by Twilio; the client waited %v", took)
	}
}
