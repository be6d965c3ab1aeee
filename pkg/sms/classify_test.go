package sms_test

import (
	"testing"

	"github.com/heraldhq/herald/pkg/sms"
)

func TestFast2SMSDefaultsFollowItsDocumentedCodes(t *testing.T) {
	c := sms.NewClassifier(sms.Fast2SMSDefaults(), nil)
	tests := []struct {
		status int
		code   string
		want   sms.Classification
	}{
		{200, "", sms.OK},
		{400, "402", sms.BadRequest},
		{400, "406", sms.BadRequest},
		{400, "411", sms.RecipientInvalid},
		{401, "412", sms.ProviderAuth},
		{401, "413", sms.ProviderAuth},
		{400, "416", sms.PaymentRequired},
		{400, "424", sms.TemplateRejected},
		{400, "425", sms.TemplateRejected},
		{400, "500", sms.TemplateRejected}, // status_code 500 in the body is not a server error
		{400, "995", sms.RecipientThrottled},
		{500, "", sms.Transient},
		{503, "", sms.Transient},
		{0, "", sms.Transient}, // timeout or network error
		{429, "", sms.Transient},
		{400, "12345", sms.BadRequest},
	}
	for _, tt := range tests {
		if got := c.Classify(tt.status, tt.code); got != tt.want {
			t.Errorf("HTTP %d code %q: %s, want %s", tt.status, tt.code, got, tt.want)
		}
	}
}

func TestOverridesWinOverDefaults(t *testing.T) {
	c := sms.NewClassifier(sms.Fast2SMSDefaults(), map[string]string{"412": "payment_required", "http:401": "payment_required"})
	if got := c.Classify(401, "412"); got != sms.PaymentRequired {
		t.Errorf("code override: %s", got)
	}
	if got := c.Classify(401, ""); got != sms.PaymentRequired {
		t.Errorf("http override: %s", got)
	}
	tw := sms.NewClassifier(sms.TwilioDefaults(), nil)
	for code, want := range map[string]sms.Classification{"20003": sms.ProviderAuth, "21211": sms.RecipientInvalid,
		"21610": sms.RecipientInvalid, "21901": sms.TemplateRejected, "20429": sms.Transient, "30007": sms.TemplateRejected} {
		if got := tw.Classify(400, code); got != want {
			t.Errorf("twilio %s: %s, want %s", code, got, want)
		}
	}
}

func TestTwilioSignatureCoversTheURLAndSortedParameters(t *testing.T) {
	params := map[string][]string{"To": {"+14155550123"}, "MessageSid": {"SM1"}, "MessageStatus": {"delivered"}}
	sig := sms.TwilioSignature("token", "https://h.example/v1/webhooks/twilio", params)
	if !sms.ValidTwilioSignature("token", "https://h.example/v1/webhooks/twilio", params, sig) {
		t.Fatal("own signature refused")
	}
	for name, ok := range map[string]bool{
		"other token": sms.ValidTwilioSignature("other", "https://h.example/v1/webhooks/twilio", params, sig),
		"other URL":   sms.ValidTwilioSignature("token", "https://h.example/v1/webhooks/twilio?x=1", params, sig),
		"no token":    sms.ValidTwilioSignature("", "https://h.example/v1/webhooks/twilio", params, sig),
	} {
		if ok {
			t.Errorf("%s: accepted", name)
		}
	}
	params["MessageStatus"] = []string{"failed"}
	if sms.ValidTwilioSignature("token", "https://h.example/v1/webhooks/twilio", params, sig) {
		t.Error("tampered parameter accepted")
	}
}
