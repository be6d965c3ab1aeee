package app_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/heraldhq/herald/pkg/client"
	"github.com/heraldhq/herald/services/herald/app/apptest"
)

// TestTheGoClientAgainstThePlatform: pkg/client's calls against the real
// handlers: a send, a wrong code, a publish, a forbidden type.
func TestTheGoClientAgainstThePlatform(t *testing.T) {
	a := apptest.StartApp(t)
	c := client.New(a.URL)
	ctx := context.Background()

	sent, err := c.SendOTP(ctx, client.Send{App: "demo", Phone: "+919812345678", IdempotencyKey: "order-1"})
	if err != nil || sent.Status != "sent" || sent.RequestID == "" {
		t.Fatalf("send: %+v, %v", sent, err)
	}
	again, err := c.SendOTP(ctx, client.Send{App: "demo", Phone: "+919812345678", IdempotencyKey: "order-1"})
	if err != nil || again.RequestID != sent.RequestID {
		t.Errorf("the same idempotency key: %+v, %v; want request %s again", again, err, sent.RequestID)
	}

	var e *client.Error
	if err := c.Verify(ctx, sent.RequestID, "000000"); !errors.As(err, &e) || e.Code != "invalid_code" {
		t.Errorf("a wrong code: %T %v", err, err)
	}
	if _, err := c.SendOTP(ctx, client.Send{App: "nope", Phone: "+919812345678"}); !errors.As(err, &e) || e.Status != http.StatusNotFound {
		t.Errorf("an unknown app: %T %v", err, err)
	}

	acks, err := c.Publish(ctx, client.Event{Type: "integration_call_completed", Source: "billing",
		Data: map[string]any{"integration": "stripe", "operation": "charges.create", "statusCode": 200, "latencyMs": 10}})
	if err != nil || len(acks) != 1 || acks[0].Stream != "EVENTS" {
		t.Errorf("publish: %+v, %v", acks, err)
	}
	if _, err := c.Publish(ctx, client.Event{Type: "otp_verified", Source: "shop", Data: map[string]any{"app": "demo", "attempts": 1}}); !errors.As(err, &e) || e.Status != http.StatusForbidden {
		t.Errorf("a Herald-owned type: %T %v", err, err)
	}
}
