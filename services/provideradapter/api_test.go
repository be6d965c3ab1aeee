package provideradapter_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
)

func TestVerify(t *testing.T) {
	r := startRig(t, "")
	sent := func(app string) (string, string) {
		t.Helper()
		before := len(r.f2s.Requests())
		resp := r.send(t, app)
		if resp.Status != http.StatusOK {
			t.Fatalf("send: %d %s", resp.Status, resp.Body)
		}
		return requestID(t, resp), r.f2s.Requests()[before].Code()
	}
	wrong := func(code string) string {
		n, _ := strconv.Atoi(code)
		return strconv.Itoa(100000 + (n+1)%900000)
	}
	t.Run("right code once", func(t *testing.T) {
		rid, code := sent("bank")
		if v := r.verify(t, rid, code); v.Status != 200 || v.JSON(t)["verified"] != true {
			t.Fatalf("first: %d %s", v.Status, v.Body)
		}
		if v := r.verify(t, rid, code); v.Status != http.StatusGone || v.JSON(t)["error"] != "used" {
			t.Errorf("second: %d %s", v.Status, v.Body)
		}
		es := r.waitFor(t, rid, "otp_verified")
		if d := find[event.OTPVerified](t, es); d.Attempts != 1 {
			t.Errorf("verified %+v", d)
		}
	})
	t.Run("wrong code says the attempts left", func(t *testing.T) {
		rid, code := sent("bank")
		v := r.verify(t, rid, wrong(code))
		if v.Status != http.StatusBadRequest || v.JSON(t)["error"] != "invalid_code" || v.JSON(t)["attemptsLeft"] != 4.0 {
			t.Fatalf("wrong: %d %s", v.Status, v.Body)
		}
		if v := r.verify(t, rid, code); v.Status != 200 {
			t.Errorf("right after a wrong one: %d %s", v.Status, v.Body)
		}
	})
	t.Run("attempt limit", func(t *testing.T) {
		rid, code := sent("short") // maxVerifyAttempts: 2
		for i, left := range []float64{1, 0} {
			if v := r.verify(t, rid, wrong(code)); v.Status != 400 || v.JSON(t)["attemptsLeft"] != left {
				t.Fatalf("wrong %d: %d %s", i, v.Status, v.Body)
			}
		}
		if v := r.verify(t, rid, code); v.Status != http.StatusTooManyRequests || v.JSON(t)["error"] != "too_many_attempts" {
			t.Errorf("after the limit, even the right code: %d %s", v.Status, v.Body)
		}
	})
	t.Run("expired", func(t *testing.T) {
		rid, code := sent("short") // ttl: 1s
		exp := find[event.OTPGenerated](t, r.waitFor(t, rid, "otp_generated")).ExpiresAt
		// The expiry is the behaviour under test and the dispatcher reads
		// the wall clock: wait until just past the code's own expiry.
		time.Sleep(time.Until(exp) + 10*time.Millisecond)
		if v := r.verify(t, rid, code); v.Status != http.StatusGone || v.JSON(t)["error"] != "expired" {
			t.Errorf("expired: %d %s", v.Status, v.Body)
		}
	})
	t.Run("unknown request and bad input", func(t *testing.T) {
		if v := r.verify(t, "01a2b3c4-0000-7000-8000-000000000000", "123456"); v.Status != http.StatusNotFound {
			t.Errorf("unknown: %d %s", v.Status, v.Body)
		}
		if v := r.Do(t, "POST", "/v1/otp/verify", `{"requestId":"x","code":"12"}`); v.Status != 400 {
			t.Errorf("bad: %d %s", v.Status, v.Body)
		}
	})
}

func TestSendRejectsBadInputWithAClear4xx(t *testing.T) {
	r := startRig(t, "")
	tests := []struct {
		name, body string
		status     int
		code       string
	}{
		{"bad JSON", `{"app":`, 400, "invalid_json"},
		{"unknown field", `{"app":"bank","phone":"+919812345678","otp":"1"}`, 400, "invalid_json"},
		{"no app", `{"phone":"+919812345678"}`, 400, "invalid_request"},
		{"unknown app", `{"app":"nope","phone":"+919812345678"}`, 404, "unknown_app"},
		{"no phone", `{"app":"bank"}`, 400, "invalid_phone"},
		{"not E.164", `{"app":"global","phone":"12ab"}`, 400, "invalid_phone"},
		{"not an Indian mobile for fast2sms", `{"app":"bank","phone":"+14155550123"}`, 400, "invalid_phone"},
		{"Indian landline-like for fast2sms", `{"app":"bank","phone":"+912212345678"}`, 400, "invalid_phone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := r.Do(t, "POST", "/v1/otp/send", tt.body)
			if resp.Status != tt.status || resp.JSON(t)["error"] != tt.code {
				t.Errorf("%d %s, want %d %s", resp.Status, resp.Body, tt.status, tt.code)
			}
		})
	}
	if resp := r.Do(t, "POST", "/v1/otp/send", `{"app":"bank","phone":"98123 45678"}`); resp.Status != 200 {
		t.Errorf("10-digit Indian mobile: %d %s", resp.Status, resp.Body)
	}
	if n := len(r.f2s.Requests()); n != 1 {
		t.Errorf("fast2sms got %d requests, want only the valid one", n)
	}
}

func TestAsyncSendAnswers202AtOnce(t *testing.T) {
	r := startRig(t, "")
	hold := r.f2s.HoldNext()
	resp := r.Do(t, "POST", "/v1/otp/send?mode=async", map[string]string{"app": "bank", "phone": phone()})
	if resp.Status != http.StatusAccepted || resp.JSON(t)["status"] != "accepted" {
		t.Fatalf("%d %s", resp.Status, resp.Body)
	}
	<-hold.Arrived
	hold.Release()
	r.waitFor(t, requestID(t, resp), "otp_delivery_completed")
}

func TestIdempotencyKeyReplaysTheFirstAnswerAndRefusesConcurrentDuplicates(t *testing.T) {
	r := startRig(t, "")
	body := map[string]string{"app": "bank", "phone": phone()}
	first := r.Do(t, "POST", "/v1/otp/send", body, "Idempotency-Key", "order-1")
	if first.Status != 200 {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	again := r.Do(t, "POST", "/v1/otp/send", body, "Idempotency-Key", "order-1")
	if again.Status != 200 || string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %d %s (first %s)", again.Status, again.Body, first.Body)
	}
	if n := len(r.f2s.Requests()); n != 1 {
		t.Errorf("fast2sms got %d requests for one key", n)
	}
	other := r.Do(t, "POST", "/v1/otp/send", map[string]string{"app": "bank", "phone": phone()}, "Idempotency-Key", "order-1")
	if other.Status != http.StatusUnprocessableEntity {
		t.Errorf("same key, other body: %d %s", other.Status, other.Body)
	}

	hold := r.f2s.HoldNext()
	body2 := map[string]string{"app": "bank", "phone": phone()}
	var wg sync.WaitGroup
	var held *struct{ status int }
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp := r.Do(t, "POST", "/v1/otp/send", body2, "Idempotency-Key", "order-2")
		held = &struct{ status int }{resp.Status}
	}()
	<-hold.Arrived
	dup := r.Do(t, "POST", "/v1/otp/send", body2, "Idempotency-Key", "order-2")
	if dup.Status != http.StatusConflict || dup.JSON(t)["error"] != "idempotency_conflict" {
		t.Errorf("concurrent duplicate: %d %s", dup.Status, dup.Body)
	}
	hold.Release()
	wg.Wait()
	if held.status != 200 {
		t.Errorf("held request: %d", held.status)
	}
	if n := len(r.f2s.Requests()); n != 2 {
		t.Errorf("fast2sms got %d requests, want 2", n)
	}
}

// A caller that leaves while its keyed send waits for the provider (a
// bridge killed, a client timed out) does not cut the send short: the
// repeat of the key waits its turn (409) and then gets the outcome, sent,
// and the number one SMS.
func TestAKeyedSendWhoseCallerLeftAnswersItsRepeatWithTheOutcome(t *testing.T) {
	r := startRig(t, "")
	body := fmt.Sprintf(`{"app":"bank","phone":%q}`, phone())
	hold := r.f2s.HoldNext()
	ctx, cancel := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", r.URL+"/v1/otp/send", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "order-left")
		_, err := http.DefaultClient.Do(req)
		left <- err
	}()
	<-hold.Arrived
	cancel()
	if err := <-left; err == nil {
		t.Fatal("the caller's request was not cut")
	}
	if dup := r.Do(t, "POST", "/v1/otp/send", body, "Idempotency-Key", "order-left"); dup.Status != http.StatusConflict {
		t.Errorf("the repeat while the send waits: %d %s, want 409", dup.Status, dup.Body)
	}
	hold.Release()
	var again *heraldtest.Response
	heraldtest.Eventually(t, 10*time.Second, "the send's answer stored", func() bool {
		again = r.Do(t, "POST", "/v1/otp/send", body, "Idempotency-Key", "order-left")
		return again.Status != http.StatusConflict
	})
	if again.Status != http.StatusOK || again.JSON(t)["status"] != "sent" {
		t.Errorf("the repeat after the caller left: %d %s, want 200 sent", again.Status, again.Body)
	}
	if n := len(r.f2s.Requests()); n != 1 {
		t.Errorf("fast2sms got %d requests, want 1", n)
	}
}

func TestPerPhoneLimitAnswers429WithRetryAfter(t *testing.T) {
	r := startRig(t, "")
	body := map[string]string{"app": "limited", "phone": phone()}
	for i := range 2 {
		if resp := r.Do(t, "POST", "/v1/otp/send", body); resp.Status != 200 {
			t.Fatalf("send %d: %d %s", i, resp.Status, resp.Body)
		}
	}
	resp := r.Do(t, "POST", "/v1/otp/send", body)
	if resp.Status != http.StatusTooManyRequests || resp.JSON(t)["error"] != "phone_rate_limited" {
		t.Fatalf("third: %d %s", resp.Status, resp.Body)
	}
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	if resp := r.Do(t, "POST", "/v1/otp/send", map[string]string{"app": "limited", "phone": phone()}); resp.Status != 200 {
		t.Errorf("another phone: %d %s", resp.Status, resp.Body)
	}
	if n := len(r.f2s.Requests()); n != 3 {
		t.Errorf("fast2sms got %d requests, want 3", n)
	}
}

func TestPlatformOTPServesThePolicyTable(t *testing.T) {
	r := startRig(t, "")
	j := r.Do(t, "GET", "/platform/otp", nil).JSON(t)
	apps := j["apps"].([]any)
	if j["dltEnabled"] != true || len(apps) != 6 {
		t.Fatalf("%v", j)
	}
	bank := apps[0].(map[string]any)
	if bank["app"] != "bank" || bank["deliveryPolicy"] != "dlt_only" || bank["legacyRouteEnabled"] != false ||
		bank["effectiveRoute"] != "dlt" || bank["fallbackRoute"] != nil {
		t.Errorf("bank %v", bank)
	}
	txt := r.Do(t, "GET", "/platform/otp", nil, "Accept", "text/plain")
	if txt.Header.Get("Content-Type") != "text/plain; charset=utf-8" || !containsAll(string(txt.Body),
		"APP", "POLICY", "shop", "dlt_with_fallback", "fast2sms,twilio", "1707100000000000002") {
		t.Errorf("text table:\n%s", txt.Body)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// A failed synchronous send is a problem (RFC 9457) that keeps its
// requestId, and its replay is the same problem.
func TestIdempotencyKeyReplaysAFailedSendAsTheSameProblem(t *testing.T) {
	r := startRig(t, "")
	r.f2s.Script(heraldtest.Fast2SMSInvalidMsgID)
	body := map[string]string{"app": "bank", "phone": phone()}
	first := r.Do(t, "POST", "/v1/otp/send", body, "Idempotency-Key", "order-502")
	p := first.JSON(t)
	if first.Status != http.StatusBadGateway || first.Header.Get("Content-Type") != "application/problem+json" ||
		p["type"] != "https://herald.dev/problems/sms_failed" || p["status"] != 502.0 || p["requestId"] == "" || p["detail"] == "" || p["instance"] != "/v1/otp/send" {
		t.Fatalf("first: %d %s %s", first.Status, first.Header.Get("Content-Type"), first.Body)
	}
	again := r.Do(t, "POST", "/v1/otp/send", body, "Idempotency-Key", "order-502")
	if again.Status != http.StatusBadGateway || string(again.Body) != string(first.Body) ||
		again.Header.Get("Content-Type") != "application/problem+json" || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %d %s %s (first %s)", again.Status, again.Header.Get("Content-Type"), again.Body, first.Body)
	}
}
