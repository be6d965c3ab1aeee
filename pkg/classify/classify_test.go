package classify_test

import (
	"strings"
	"testing"

	"github.com/heraldhq/herald/pkg/classify"
	"github.com/heraldhq/herald/pkg/event"
)

func TestIntegrationCallsAreClassifiedByTheFirstMatchingRule(t *testing.T) {
	rules := append([]classify.Rule{
		{Integration: "cloudflare", Error: `(?i)billing`, Classification: "payment_required", Reason: "Cloudflare says billing when the card failed"},
		{Integration: "twilio", ErrorCode: "20003", Classification: "provider_auth", Reason: "Twilio 20003: authentication failed"},
	}, classify.Defaults()...)
	c, err := classify.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   event.IntegrationCallCompleted
		want string // classification, "" for none
	}{
		{"the seed's stripe 401", event.IntegrationCallCompleted{Integration: "stripe", StatusCode: 401}, "payment_required"},
		{"stripe's other refusals are not", event.IntegrationCallCompleted{Integration: "stripe", StatusCode: 403}, ""},
		{"a 401 elsewhere is not", event.IntegrationCallCompleted{Integration: "sendgrid", StatusCode: 401}, ""},
		{"any 402", event.IntegrationCallCompleted{Integration: "sendgrid", StatusCode: 402}, "payment_required"},
		{"an error text pattern", event.IntegrationCallCompleted{Integration: "cloudflare", StatusCode: 403, Error: "Billing issue on account"}, "payment_required"},
		{"the pattern is required", event.IntegrationCallCompleted{Integration: "cloudflare", StatusCode: 403, Error: "rate limited"}, ""},
		{"an error code", event.IntegrationCallCompleted{Integration: "twilio", StatusCode: 401, ErrorCode: "20003"}, "provider_auth"},
		{"the producer's own classification stands", event.IntegrationCallCompleted{Integration: "stripe", StatusCode: 401, Classification: "transient"}, "transient"},
		{"a success is not", event.IntegrationCallCompleted{Integration: "stripe", StatusCode: 200}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.in
			set := c.Integration(&d)
			if d.Classification != tc.want {
				t.Fatalf("classification %q, want %q", d.Classification, tc.want)
			}
			if set != (tc.in.Classification == "" && tc.want != "") || set != (d.ClassificationReason != "") {
				t.Fatalf("set %v with reason %q", set, d.ClassificationReason)
			}
		})
	}
}

func TestRulesThatCannotWorkAreRefusedWithTheirIndex(t *testing.T) {
	tests := []struct {
		rule classify.Rule
		want string
	}{
		{classify.Rule{StatusCodes: []int{401}, Reason: "x"}, `rule 0: classification ""`},
		{classify.Rule{StatusCodes: []int{401}, Classification: "Payment Required", Reason: "x"}, "lower-case"},
		{classify.Rule{StatusCodes: []int{401}, Classification: "payment_required"}, "reason is required"},
		{classify.Rule{StatusCodes: []int{401}, Classification: "payment_required", Reason: strings.Repeat("x", 513)}, "at most 512"},
		{classify.Rule{Classification: "payment_required", Reason: "x"}, "at least one of"},
		{classify.Rule{StatusCodes: []int{1000}, Classification: "payment_required", Reason: "x"}, "not an HTTP status"},
		{classify.Rule{Error: "(", Classification: "payment_required", Reason: "x"}, "error: error parsing regexp"},
	}
	for _, tc := range tests {
		_, err := classify.New([]classify.Rule{tc.rule})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error with %q", tc.rule, err, tc.want)
		}
	}
}

func TestClassifiedEventsAreEncodedAgainAndValid(t *testing.T) {
	cat, err := event.NewCatalog()
	if err != nil {
		t.Fatal(err)
	}
	c, err := classify.New(classify.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	e := event.New("billing", event.IntegrationCallCompleted{Integration: "stripe", Operation: "charges.create", StatusCode: 401, LatencyMs: 1})
	if err := cat.Encode(e); err != nil {
		t.Fatal(err)
	}
	if err := c.Events(cat, e); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(e.Raw), `"classification":"payment_required"`) || !strings.Contains(string(e.Raw), `"classificationReason":"Stripe`) {
		t.Fatalf("data: %s", e.Raw)
	}
	if err := cat.Validate(e.Type, e.Raw); err != nil {
		t.Fatal(err)
	}
}
