package heraldtest

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/heraldhq/herald/pkg/event"
)

// BankApp is herald.yaml's apps section with one app, bank, sending over
// Fast2SMS's DLT route with the given policy (dlt_only, dlt_with_fallback):
// the template every end-to-end test of the DLT path uses.
func BankApp(policy string) string {
	return fmt.Sprintf(`apps:
  bank:
    deliveryPolicy: %s
    providers: [fast2sms]
    dlt:
      senderId: BANKOT
      entityId: "1701100000000000001"
      templateId: "1707100000000000001"
      messageId: "161001"
      text: "{#numeric#} is your Bank OTP. - BANKOT"
      variables: [{value: "{code}", tag: numeric}]
`, policy)
}

// Catalog is the event catalog; it fails the test if it cannot be built.
func Catalog(t testing.TB) *event.Catalog {
	t.Helper()
	cat, err := event.NewCatalog()
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// OTPPlatform is herald.yaml for the platform sending bank's OTPs
// (BankApp with policy) through f2s: fixed seal and hash keys (processes
// sharing the config can open each other's seals) and no rate limits, so
// that a test's or a benchmark's load is sent as it comes.
func OTPPlatform(f2s *Fast2SMS, policy string) string {
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	return fmt.Sprintf(`
otp:
  sealKey: %q
  hashKey: %q
  deliveryTimeout: 8s
  defaults: {resendCooldown: 0s, perPhone: {count: 0}, perApp: {rate: 0}}
providers:
  fast2sms: {baseURL: %q, timeout: 2s, retries: 1, backoff: 50ms}
%s`, key, key, f2s.URL, BankApp(policy))
}
