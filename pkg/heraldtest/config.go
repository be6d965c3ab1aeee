package heraldtest

import (
	"fmt"
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
