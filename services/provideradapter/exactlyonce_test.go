package provideradapter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
)

// seedAttempt writes the ledger entry a previous delivery of the dispatch
// would have left, as if the adapter died at that point.
func seedAttempt(t *testing.T, r *rig, requestID string, rec map[string]any) {
	t.Helper()
	ctx := context.Background()
	kv, err := r.As(t, access.ProviderAdapter).JS.KeyValue(ctx, "OTP_DELIVERY")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rec)
	if _, err := kv.Create(ctx, "attempt."+strings.ReplaceAll(requestID+".leg0", ".", "_")+".1", b); err != nil {
		t.Fatal(err)
	}
}

// startAdapter runs a provider adapter against the rig's server, sharing
// its data dir (and so its generated OTP keys).
func startAdapter(t *testing.T, r *rig) {
	t.Helper()
	apptest.StartApp(t, apptest.WithConfig(rigConfig(r.f2s, r.tw, "")), apptest.WithTargets("provider-adapter"),
		apptest.WithNATS(r.NATSURL), apptest.WithDataDir(r.DataDir))
}

func TestRedeliveredDispatchReusesTheRecordedOutcomeWithoutCallingTheProvider(t *testing.T) {
	r := startRig(t, "", apptest.WithTargets("dispatcher"))
	resp := r.Do(t, "POST", "/v1/otp/send?mode=async", map[string]string{"app": "bank", "phone": phone()})
	rid := requestID(t, resp)
	// The adapter called Fast2SMS and recorded the answer, then died before
	// it published anything or acknowledged the dispatch.
	seedAttempt(t, r, rid, map[string]any{"state": "done", "at": time.Now().UTC(), "result": map[string]any{
		"class": "ok", "statusCode": 200, "providerRequestId": "f2s-earlier", "latencyMs": 120.0}})
	startAdapter(t, r)
	es := r.waitFor(t, rid, "otp_delivery_completed")
	if n := len(r.f2s.Requests()); n != 0 {
		t.Fatalf("fast2sms called %d times for an attempt already made", n)
	}
	if ok := find[event.ProviderResponseReceived](t, es); ok.ProviderRequestID != "f2s-earlier" || ok.Attempt != 1 {
		t.Errorf("re-emitted response %+v", ok)
	}
	if c := find[event.OTPDeliveryCompleted](t, es); c.Status != "delivered" {
		t.Errorf("completed %+v", c)
	}
}

func TestAttemptInDoubtIsNeverRepeated(t *testing.T) {
	r := startRig(t, "", apptest.WithTargets("dispatcher"))
	resp := r.Do(t, "POST", "/v1/otp/send?mode=async", map[string]string{"app": "shop", "phone": phone()})
	rid := requestID(t, resp)
	// Claimed a minute ago and never recorded: the adapter died during the call.
	seedAttempt(t, r, rid, map[string]any{"state": "calling", "at": time.Now().Add(-time.Minute).UTC()})
	startAdapter(t, r)
	es := r.waitFor(t, rid, "otp_delivery_completed")
	if n := len(r.f2s.Requests()) + len(r.tw.Requests()); n != 0 {
		t.Fatalf("%d SMS sent after an attempt in doubt", n)
	}
	c := find[event.OTPDeliveryCompleted](t, es)
	if c.Status != "failed" || c.Reason != "outcome_unknown" || c.Classification != "unknown" {
		t.Errorf("completed %+v", c)
	}
	if fb := all[event.OTPDLTFallback](es); len(fb) != 0 {
		t.Errorf("fell back after an attempt in doubt (a second SMS): %+v", fb)
	}
}

func TestNoCodeLeaksIntoLogsMetricsOrStreams(t *testing.T) {
	var logs bytes.Buffer
	r := startRig(t, "", apptest.WithLogOutput(&logs))
	// A full run: deliveries, retries, fallbacks, failures, verifications, receipts.
	r.f2s.Script(heraldtest.Fast2SMSServerError)
	r.send(t, "bank")
	r.f2s.Script(heraldtest.Fast2SMSInvalidTemplate)
	r.send(t, "shop")
	r.f2s.Script(heraldtest.Fast2SMSDLTBlacklisted)
	failed := requestID(t, r.send(t, "bank"))
	r.send(t, "manual")
	r.f2s.Script(heraldtest.Fast2SMSInvalidTemplate, heraldtest.Fast2SMSLowBalance)
	r.send(t, "shop")
	ok := r.send(t, "bank")
	reqs := r.f2s.Requests()
	r.verify(t, requestID(t, ok), reqs[len(reqs)-1].Code())
	r.verify(t, failed, "0000000000")
	sid := r.tw.Requests()[0].SID
	r.twilioCallback(t, sid, "delivered", "")

	var codes []string
	for _, q := range r.f2s.Requests() {
		codes = append(codes, q.Code())
	}
	for _, q := range r.tw.Requests() {
		codes = append(codes, q.Code())
	}
	if len(codes) < 8 {
		t.Fatalf("only %d codes captured", len(codes))
	}
	for _, c := range codes {
		if !regexp.MustCompile(`^[0-9]{10}$`).MatchString(c) {
			t.Fatalf("captured code %q is not 10 digits", c)
		}
	}
	r.waitFor(t, failed, "otp_revoked") // the outcome consumer's revocation is stored too
	where := map[string]string{"logs": logs.String(), "metrics": string(r.Do(t, "GET", "/metrics", nil).Body)}
	for name, text := range r.StoredText(t) {
		where["stream "+name] = text
	}
	for _, must := range []string{"stream EVENTS", "stream KV_OTP_CODES", "stream KV_OTP_DELIVERY"} {
		if where[must] == "" {
			t.Fatalf("%s was not read", must)
		}
	}
	if !strings.Contains(where["logs"], `"event":"otp_delivery_completed"`) {
		t.Fatalf("the logs were not captured:\n%s", where["logs"])
	}
	for place, text := range where {
		for _, c := range codes {
			if strings.Contains(text, c) {
				t.Errorf("code %s found in %s", c, place)
			}
		}
	}
}
