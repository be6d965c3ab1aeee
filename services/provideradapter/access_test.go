package provideradapter_test

import (
	"net/http"
	"testing"

	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
)

func TestSendAndVerifyNeedAKeyScopedToTheApp(t *testing.T) {
	f2s, tw := heraldtest.NewFast2SMS(t), heraldtest.NewTwilio(t)
	t.Setenv("FAST2SMS_API_KEY", f2s.APIKey)
	t.Setenv("TWILIO_AUTH_TOKEN", tw.AuthToken)
	bank := heraldtest.ProducerKey(t, "bank-backend", []string{"bank"}, nil)
	shop := heraldtest.ProducerKey(t, "shop-backend", []string{"shop"}, []string{"integration_call_completed"})
	ops := heraldtest.OperatorKey(t, "ops")
	r := &rig{App: apptest.StartApp(t, apptest.WithConfig(rigConfig(f2s, tw, "")+heraldtest.KeysYAML(t, bank, shop, ops))), f2s: f2s, tw: tw}

	for name, header := range map[string][]string{"no key": nil, "another app's key": shop.Bearer(), "operator key": ops.Bearer()} {
		want := http.StatusForbidden
		if header == nil {
			want = http.StatusUnauthorized
		}
		if got := r.send(t, "bank", header...); got.Status != want {
			t.Errorf("send with %s: %d %s", name, got.Status, got.Body)
		}
	}
	if n := len(f2s.Requests()); n != 0 {
		t.Fatalf("%d SMS sent for refused requests", n)
	}
	sent := r.send(t, "bank", bank.Bearer()...)
	if sent.Status != http.StatusOK {
		t.Fatalf("send with the app's key: %d %s", sent.Status, sent.Body)
	}
	rid := requestID(t, sent)
	code := f2s.Requests()[0].Code()
	body := map[string]string{"requestId": rid, "code": code}
	if got := r.Do(t, "POST", "/v1/otp/verify", body); got.Status != http.StatusUnauthorized {
		t.Errorf("verify without a key: %d %s", got.Status, got.Body)
	}
	// The right code with another app's key: refused, and no attempt spent.
	for range 3 {
		if got := r.Do(t, "POST", "/v1/otp/verify", body, shop.Bearer()...); got.Status != http.StatusForbidden || got.JSON(t)["error"] != "forbidden" {
			t.Errorf("verify with another app's key: %d %s", got.Status, got.Body)
		}
	}
	wrong := map[string]string{"requestId": rid, "code": "0000000000"}
	if got := r.Do(t, "POST", "/v1/otp/verify", wrong, bank.Bearer()...); got.Status != http.StatusBadRequest || got.JSON(t)["attemptsLeft"] != 4.0 {
		t.Errorf("a wrong code after refused attempts: %d %s (want 4 of 5 attempts left)", got.Status, got.Body)
	}
	if got := r.Do(t, "POST", "/v1/otp/verify", body, bank.Bearer()...); got.Status != http.StatusOK {
		t.Errorf("verify with the app's key: %d %s", got.Status, got.Body)
	}
}
