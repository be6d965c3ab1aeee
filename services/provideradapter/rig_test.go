package provideradapter_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/streams"
)

// rig is the whole platform with Fast2SMS and Twilio fakes on 127.0.0.1.
type rig struct {
	*apptest.App
	f2s *heraldtest.Fast2SMS
	tw  *heraldtest.Twilio
}

const appsYAML = `
apps:
  bank:
    deliveryPolicy: dlt_only
    providers: [fast2sms]
    dlt: &bankdlt
      senderId: BANKOT
      entityId: "1701100000000000001"
      templateId: "1707100000000000001"
      messageId: "161001"
      text: "{#numeric#} is your Bank OTP. It is valid for {#numeric#} minutes. - BANKOT"
      variables: [{value: "{code}", tag: numeric}, {value: "{minutes}", tag: numeric}]
  shop:
    deliveryPolicy: dlt_with_fallback
    providers: [fast2sms, twilio]
    dlt:
      senderId: SHOPOT
      entityId: "1701100000000000002"
      templateId: "1707100000000000002"
      messageId: "161002"
      text: "{#numeric#} is your Shop code. - SHOPOT"
      variables: [{value: "{code}", tag: numeric}]
    quickText: "{code} is your {app} code"
  manual:
    deliveryPolicy: dlt_only
    providers: [fast2sms]
    dlt:
      route: dlt_manual
      senderId: BANKOT
      entityId: "1701100000000000001"
      templateId: "1707100000000000003"
      text: "{#numeric#} is your Bank OTP. It is valid for {#numeric#} minutes. - BANKOT"
      variables: [{value: "{code}", tag: numeric}, {value: "{minutes}", tag: numeric}]
  global:
    deliveryPolicy: quick_only
    providers: [twilio]
  short:
    deliveryPolicy: dlt_only
    providers: [fast2sms]
    dlt: *bankdlt
    ttl: 1s
    maxVerifyAttempts: 2
  limited:
    deliveryPolicy: dlt_only
    providers: [fast2sms]
    dlt: *bankdlt
    perPhone: {count: 2, window: 1m}
    testNumbers: {"+919999900001": "4242424242"}
`

func rigConfig(f2s *heraldtest.Fast2SMS, tw *heraldtest.Twilio, extra string) string {
	if !strings.Contains(extra, "breaker") {
		extra += ", breaker: {failures: 100}" // tests of other things must not trip it
	}
	return fmt.Sprintf(`
otp:
  syncTimeout: 5s
  deliveryTimeout: 3s
  defaults:
    resendCooldown: 0s
    perPhone: {count: 0}
    perApp: {rate: 0}
    codeLength: 10 # long codes: a leak check cannot match a phone number or a time by chance
providers:
  concurrency: 16
  fast2sms: {baseURL: %q, timeout: 300ms, retries: 2, backoff: 20ms%s}
  twilio: {baseURL: %q, accountSid: %q, from: "+15005550006", statusCallback: %q, timeout: 300ms, retries: 1, backoff: 20ms, breaker: {failures: 100}}
`, f2s.URL, extra, tw.URL, tw.AccountSID, twilioPublicURL) + appsYAML
}

// twilioPublicURL is the public URL of the Twilio webhook the rig
// configures (as behind a proxy): Twilio signs it, whatever the Host.
const twilioPublicURL = "https://herald.example.test/v1/webhooks/twilio"

// fast2smsToken is the rig's Fast2SMS webhook token.
const fast2smsToken = "f2s-hook-secret"

// twilioCallback posts a status callback signed as Twilio does for the
// configured public URL.
func (r *rig) twilioCallback(t *testing.T, sid, status, errorCode string) *heraldtest.Response {
	t.Helper()
	return r.tw.StatusCallbackVia(t, r.URL+"/v1/webhooks/twilio", twilioPublicURL, sid, status, errorCode, "")
}

// startRig starts fakes and the platform; fast2smsExtra is appended to the
// fast2sms provider settings (e.g. `, classify: {...}`).
func startRig(t *testing.T, fast2smsExtra string, opts ...apptest.AppOption) *rig {
	t.Helper()
	f2s, tw := heraldtest.NewFast2SMS(t), heraldtest.NewTwilio(t)
	t.Setenv("FAST2SMS_API_KEY", f2s.APIKey)
	t.Setenv("TWILIO_AUTH_TOKEN", tw.AuthToken)
	t.Setenv("FAST2SMS_WEBHOOK_TOKEN", fast2smsToken)
	opts = append([]apptest.AppOption{apptest.WithConfig(rigConfig(f2s, tw, fast2smsExtra))}, opts...)
	return &rig{App: apptest.StartApp(t, opts...), f2s: f2s, tw: tw}
}

var phoneSeq = 0

// phone returns a fresh Indian mobile number.
func phone() string {
	phoneSeq++
	return fmt.Sprintf("+9198%08d", phoneSeq)
}

func (r *rig) send(t *testing.T, app string, header ...string) *heraldtest.Response {
	t.Helper()
	return r.Do(t, "POST", "/v1/otp/send", map[string]string{"app": app, "phone": phone()}, header...)
}

func (r *rig) verify(t *testing.T, requestID, code string) *heraldtest.Response {
	t.Helper()
	return r.Do(t, "POST", "/v1/otp/verify", map[string]string{"requestId": requestID, "code": code})
}

// events returns the events of one request, in log order.
func (r *rig) events(t *testing.T, requestID string) []*event.Event {
	t.Helper()
	var out []*event.Event
	for _, e := range heraldtest.Events(t, r.Bus, streams.Events) {
		if e.RequestID == requestID {
			out = append(out, e)
		}
	}
	return out
}

func types(es []*event.Event) string {
	var s []string
	for _, e := range es {
		s = append(s, string(e.Type))
	}
	return strings.Join(s, " ")
}

// find returns the first event of type T of a request.
func find[T event.Data](t *testing.T, es []*event.Event) T {
	t.Helper()
	for _, e := range es {
		if d, ok := event.As[T](e); ok {
			return d
		}
	}
	var zero T
	t.Fatalf("no %s among %s", zero.EventType(), types(es))
	return zero
}

func all[T event.Data](es []*event.Event) []T {
	var out []T
	for _, e := range es {
		if d, ok := event.As[T](e); ok {
			out = append(out, d)
		}
	}
	return out
}

func requestID(t *testing.T, r *heraldtest.Response) string {
	t.Helper()
	id, _ := r.JSON(t)["requestId"].(string)
	if id == "" {
		t.Fatalf("no requestId in %d %s", r.Status, r.Body)
	}
	return id
}

// waitFor polls until the request has an event of the given type.
func (r *rig) waitFor(t *testing.T, requestID string, typ event.Type) []*event.Event {
	t.Helper()
	var es []*event.Event
	heraldtest.Eventually(t, 10*time.Second, string(typ)+" of "+requestID, func() bool {
		es = r.events(t, requestID)
		for _, e := range es {
			if e.Type == typ {
				return true
			}
		}
		return false
	})
	return es
}

// count is how many messages EVENTS holds on a subject (without waiting
// for messages that are not there).
func (r *rig) count(t *testing.T, subject string) uint64 {
	t.Helper()
	ctx := context.Background()
	s, err := r.Bus.JS.Stream(ctx, streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}
