package incidents_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/streams"
)

// TestUnpaidProviderEndToEnd is the seed's "401 means unpaid" case through
// the whole platform: OTP sends to a DLT-only app whose Fast2SMS account
// answers 412 (HTTP 401, classified payment_required by configuration) open
// the payment incident and the DLT hard-failure incident with the default
// rules; the provider's next success resolves the payment one.
func TestUnpaidProviderEndToEnd(t *testing.T) {
	f2s := heraldtest.NewFast2SMS(t)
	t.Setenv("FAST2SMS_API_KEY", f2s.APIKey)
	a := apptest.StartApp(t, apptest.WithConfig(fmt.Sprintf(`
otp:
  syncTimeout: 5s
  deliveryTimeout: 3s
  defaults: {resendCooldown: 0s, perPhone: {count: 0}, perApp: {rate: 0}}
providers:
  fast2sms: {baseURL: %q, timeout: 300ms, retries: 0, backoff: 20ms, breaker: {failures: 100}, classify: {"412": payment_required}}
%sincident:
  tickInterval: 20ms
`, f2s.URL, heraldtest.BankApp("dlt_only"))), apptest.WithTargets("dispatcher", "provider-adapter", "incident"))
	f2s.Script(heraldtest.Fast2SMSInvalidKey, heraldtest.Fast2SMSInvalidKey)
	for i := range 2 {
		r := a.Do(t, "POST", "/v1/otp/send", map[string]string{"app": "bank", "phone": fmt.Sprintf("+91980000000%d", i)})
		if r.Status != http.StatusBadGateway {
			t.Fatalf("send %d: %d %s", i, r.Status, r.Body)
		}
	}
	heraldtest.Eventually(t, 10*time.Second, "the payment and hard-failure incidents", func() bool {
		p := list(t, a, "?state=open&app=bank")
		rules := map[string]bool{}
		for _, s := range p.Incidents {
			rules[s.Rule] = s.Group["provider"] == "fast2sms" || s.Rule == "otp-dlt-hard-failure"
		}
		return len(p.Incidents) == 2 && rules["provider-payment-required"] && rules["otp-dlt-hard-failure"]
	})
	// The account is paid: the next send succeeds and clears the payment incident.
	if r := a.Do(t, "POST", "/v1/otp/send", map[string]string{"app": "bank", "phone": "+919800000009"}); r.Status != http.StatusOK {
		t.Fatalf("send after payment: %d %s", r.Status, r.Body)
	}
	heraldtest.Eventually(t, 10*time.Second, "the payment incident resolved", func() bool {
		p := list(t, a, "?rule=provider-payment-required&state=resolved")
		return len(p.Incidents) == 1
	})
	// The API shows the projection, which publishes right after: wait for it.
	var published []*event.Event
	heraldtest.Eventually(t, 10*time.Second, "the resolution published", func() bool {
		published = heraldtest.Events(t, a.Bus, streams.Incidents)
		return len(published) >= 3
	})
	var types []string
	for _, e := range published {
		types = append(types, string(e.Type))
	}
	if len(published) != 3 {
		t.Errorf("INCIDENTS holds %v, want two openings and one resolution", types)
	}
}
