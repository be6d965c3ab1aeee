package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/heraldhq/herald/pkg/client"
)

// fake answers each request with the next scripted answer and records the
// requests.
type fake struct {
	mu      sync.Mutex
	answers []answer
	got     []*http.Request
	bodies  []string
}

type answer struct {
	status int
	header map[string]string
	body   string
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got, f.bodies = append(f.got, r), append(f.bodies, string(b))
	a := f.answers[0]
	if len(f.answers) > 1 {
		f.answers = f.answers[1:]
	}
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func start(t *testing.T, answers ...answer) (*fake, *client.Client) {
	f := &fake{answers: answers}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, client.New(srv.URL, client.WithKey("hk_test"), client.WithRetryFor(5*time.Second))
}

func TestSendsAreRetriedWithTheSameIdempotencyKeyOnlyWhenSafe(t *testing.T) {
	unavailable := answer{503, nil, `{"error":"unavailable","detail":"the log did not confirm"}`}
	sent := answer{200, nil, `{"requestId":"01abc","status":"sent","provider":"sim"}`}
	f, c := start(t, unavailable, unavailable, sent)
	got, err := c.SendOTP(context.Background(), client.Send{App: "shop", Phone: "+919812345678"})
	if err != nil || got.RequestID != "01abc" || got.Status != "sent" {
		t.Fatalf("send: %+v, %v", got, err)
	}
	if len(f.got) != 3 {
		t.Fatalf("%d requests, want 3", len(f.got))
	}
	key := f.got[0].Header.Get("Idempotency-Key")
	for _, r := range f.got {
		if r.Header.Get("Idempotency-Key") != key || key == "" || r.Header.Get("Authorization") != "Bearer hk_test" {
			t.Errorf("request headers %v", r.Header)
		}
	}
}

func TestRefusalsAreTypedAndNotRetried(t *testing.T) {
	tests := []struct {
		name  string
		ans   answer
		check func(error) bool
	}{
		{"sms_failed", answer{502, nil, `{"error":"sms_failed","detail":"no provider delivered","requestId":"01x"}`}, func(err error) bool {
			var e *client.SMSFailedError
			return errors.As(err, &e) && e.RequestID == "01x"
		}},
		{"rate limited", answer{429, map[string]string{"Retry-After": "7"}, `{"error":"rate_limited","detail":"over","retryAfter":7}`}, func(err error) bool {
			var e *client.RateLimitedError
			return errors.As(err, &e) && e.RetryAfter == 7*time.Second && e.Err.Code == "rate_limited"
		}},
		{"bad input", answer{400, nil, `{"error":"invalid_phone","detail":"not a number"}`}, func(err error) bool {
			var e *client.Error
			return errors.As(err, &e) && e.Status == 400 && e.Code == "invalid_phone"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, c := start(t, tc.ans)
			_, err := c.SendOTP(context.Background(), client.Send{App: "shop", Phone: "x"})
			if !tc.check(err) {
				t.Errorf("error %T %v", err, err)
			}
			if len(f.got) != 1 {
				t.Errorf("%d requests: a refusal must not be retried", len(f.got))
			}
		})
		// Without the client's retries, the caller's own retry loop sees the
		// refusal, not the backoff library's marker that stops any retry.
		t.Run(tc.name+" without retries", func(t *testing.T) {
			f := &fake{answers: []answer{tc.ans}}
			srv := httptest.NewServer(f)
			t.Cleanup(srv.Close)
			_, err := client.New(srv.URL, client.WithRetryFor(0)).SendOTP(context.Background(), client.Send{App: "shop", Phone: "x"})
			var pe *backoff.PermanentError
			if !tc.check(err) || errors.As(err, &pe) {
				t.Errorf("error %T %v", err, err)
			}
		})
	}
}

func TestVerifyIsNeverRetried(t *testing.T) {
	f, c := start(t, answer{503, nil, `{"error":"unavailable","detail":"x"}`}, answer{200, nil, `{"verified":true}`})
	if err := c.Verify(context.Background(), "01abc", "123456"); err == nil {
		t.Fatal("a 503 verify: want the error, not a retry")
	}
	if len(f.got) != 1 {
		t.Errorf("%d requests: each verify attempt counts", len(f.got))
	}
}

func TestPublishGivesEveryEventAnIDSoRetriesAreTheSameEvents(t *testing.T) {
	f, c := start(t, answer{503, nil, `{"error":"unavailable","detail":"x"}`},
		answer{202, nil, `{"events":[{"id":"a","type":"integration_call_completed","stream":"EVENTS","seq":7}]}`})
	acks, err := c.Publish(context.Background(), client.Event{Type: "integration_call_completed", Source: "billing", Data: map[string]any{"x": 1}})
	if err != nil || len(acks) != 1 || acks[0].Sequence != 7 {
		t.Fatalf("publish: %+v, %v", acks, err)
	}
	if len(f.bodies) != 2 || f.bodies[0] != f.bodies[1] {
		t.Errorf("the retry sent another body:\n%s\n%s", f.bodies[0], f.bodies[1])
	}
}
