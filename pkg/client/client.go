// Package client is the Go client for Herald's producers: send an OTP,
// verify it, publish events. It retries what is safe to retry — sends
// carry an Idempotency-Key and events an id, so a repeat after a lost
// answer is the same send or the same event — and answers Herald's refusals
// with typed errors: *SMSFailedError, *RateLimitedError, *Error.
//
//	c := client.New("https://herald.example.com", client.WithKey(os.Getenv("HERALD_KEY")))
//	sent, err := c.SendOTP(ctx, client.Send{App: "shop", Phone: "+919812345678"})
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"

	"github.com/heraldhq/herald/pkg/retryafter"
)

// Client talks to one Herald's HTTP API.
type Client struct {
	base    string
	key     string
	hc      *http.Client
	maxWait time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithKey sets the producer API key (sent as a bearer token).
func WithKey(key string) Option { return func(c *Client) { c.key = key } }

// WithHTTPClient replaces the HTTP client (default: a 30 s timeout).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithRetryFor bounds how long a call retries what is safe to retry
// (default 30 s; 0 disables retries).
func WithRetryFor(d time.Duration) Option { return func(c *Client) { c.maxWait = d } }

// New returns a client of the Herald at baseURL (http://127.0.0.1:8080).
func New(baseURL string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), hc: &http.Client{Timeout: 30 * time.Second}, maxWait: 30 * time.Second}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Error is a refusal Herald explained: its HTTP status, its stable code
// (invalid_phone, unknown_app, schema_violation …) and the detail.
type Error struct {
	Status int
	Code   string
	Detail string
	// Body is the whole JSON answer (extra members: index, violations …).
	Body json.RawMessage
}

func (e *Error) Error() string {
	return fmt.Sprintf("herald: %d %s: %s", e.Status, e.Code, e.Detail)
}

// SMSFailedError: the OTP was issued but no provider delivered it (HTTP
// 502 sms_failed); the code is revoked.
type SMSFailedError struct {
	RequestID string
	Err       *Error
}

func (e *SMSFailedError) Error() string {
	return "herald: sms_failed for " + e.RequestID + ": " + e.Err.Detail
}
func (e *SMSFailedError) Unwrap() error { return e.Err }

// RateLimitedError: a limit refused the call (HTTP 429: rate_limited,
// too_many_attempts, a phone's cooldown); RetryAfter says when to try again.
type RateLimitedError struct {
	RetryAfter time.Duration
	Err        *Error
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("herald: %s (retry after %s): %s", e.Err.Code, e.RetryAfter, e.Err.Detail)
}
func (e *RateLimitedError) Unwrap() error { return e.Err }

// ErrUnavailable marks what may be retried: the platform did not answer,
// or answered that it could not act (5xx other than 502 sms_failed).
var ErrUnavailable = errors.New("herald unavailable")

// do sends one request and decodes a 2xx answer into out; idempotent says
// whether a failure that may have reached the server can be repeated.
func (c *Client) do(ctx context.Context, method, path string, header http.Header, body any, idempotent bool, out any) (int, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, fmt.Errorf("herald: encoding the request: %w", err)
	}
	op := func() (int, error) {
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(raw))
		if err != nil {
			return 0, backoff.Permanent(fmt.Errorf("herald: %w", err))
		}
		req.Header.Set("Content-Type", "application/json")
		if c.key != "" {
			req.Header.Set("Authorization", "Bearer "+c.key)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		status, err := c.roundTrip(req, out)
		if err != nil && (!idempotent || !errors.Is(err, ErrUnavailable)) {
			return status, backoff.Permanent(err)
		}
		return status, err
	}
	if c.maxWait <= 0 {
		// One try; the caller sees the refusal, not backoff's marker
		// (which would stop the caller's own retries).
		status, err := op()
		if pe, ok := err.(*backoff.PermanentError); ok {
			err = pe.Unwrap()
		}
		return status, err
	}
	return backoff.Retry(ctx, op, backoff.WithMaxElapsedTime(c.maxWait))
}

func (c *Client) roundTrip(req *http.Request, out any) (int, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%w: reading the answer: %w", ErrUnavailable, err)
	}
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("herald: unreadable answer: %w", err)
		}
		return resp.StatusCode, nil
	}
	return resp.StatusCode, refusal(resp, b)
}

// refusal turns an error answer into the typed error it is.
func refusal(resp *http.Response, b []byte) error {
	var body struct {
		Error      string `json:"error"`
		Detail     string `json:"detail"`
		RequestID  string `json:"requestId"`
		RetryAfter int    `json:"retryAfter"`
	}
	_ = json.Unmarshal(b, &body)
	e := &Error{Status: resp.StatusCode, Code: body.Error, Detail: body.Detail, Body: b}
	switch {
	case resp.StatusCode == http.StatusBadGateway && body.Error == "sms_failed":
		return &SMSFailedError{RequestID: body.RequestID, Err: e}
	case resp.StatusCode == http.StatusTooManyRequests:
		// The header, else the body's retryAfter (Herald sends both).
		wait := retryafter.Parse(resp.Header, time.Duration(body.RetryAfter)*time.Second)
		return &RateLimitedError{RetryAfter: wait, Err: e}
	case resp.StatusCode >= 500:
		return fmt.Errorf("%w: %w", ErrUnavailable, e)
	}
	return e
}

// Send is one OTP send.
type Send struct {
	App, Phone string
	// Async answers at once (202 accepted) instead of waiting for the
	// provider (200 sent).
	Async bool
	// IdempotencyKey makes repeats of this send the same send; New one is
	// made when empty, so the client's own retries are safe.
	IdempotencyKey string
}

// Sent is what a send answered.
type Sent struct {
	RequestID    string `json:"requestId"`
	Status       string `json:"status"` // sent | accepted | pending
	DeliveryMode string `json:"deliveryMode,omitempty"`
	Provider     string `json:"provider,omitempty"`
}

// SendOTP issues a code and has it delivered.
func (c *Client) SendOTP(ctx context.Context, s Send) (*Sent, error) {
	key := s.IdempotencyKey
	if key == "" {
		key = uuid.NewString()
	}
	body := map[string]string{"app": s.App, "phone": s.Phone}
	if s.Async {
		body["mode"] = "async"
	}
	var out Sent
	if _, err := c.do(ctx, http.MethodPost, "/v1/otp/send", http.Header{"Idempotency-Key": {key}}, body, true, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Verify checks a code. A wrong code is an *Error with Code invalid_code;
// an expired or used one has Status 410. It is never retried: each attempt
// counts.
func (c *Client) Verify(ctx context.Context, requestID, code string) error {
	var out struct {
		Verified bool `json:"verified"`
	}
	if _, err := c.do(ctx, http.MethodPost, "/v1/otp/verify", nil, map[string]string{"requestId": requestID, "code": code}, false, &out); err != nil {
		return err
	}
	if !out.Verified {
		return errors.New("herald: verify answered without verified")
	}
	return nil
}

// Event is one event to publish (CloudEvents attributes; Herald fills in
// the rest).
type Event struct {
	// ID makes a repeat the same event (JetStream de-duplicates); a
	// UUIDv7 is made when empty.
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	Source      string    `json:"source"`
	Time        time.Time `json:"time,omitzero"`
	RequestID   string    `json:"requestid,omitempty"`
	CausationID string    `json:"causationid,omitempty"`
	Data        any       `json:"data"`
}

// Ack is one stored event.
type Ack struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Stream    string `json:"stream"`
	Sequence  uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// Publish publishes events (at most 1,000 at once) and returns their acks.
func (c *Client) Publish(ctx context.Context, events ...Event) ([]Ack, error) {
	for i := range events {
		if events[i].ID == "" {
			id, err := uuid.NewV7()
			if err != nil {
				return nil, fmt.Errorf("herald: event id: %w", err)
			}
			events[i].ID = id.String()
		}
	}
	var out struct {
		Events []Ack `json:"events"`
	}
	if _, err := c.do(ctx, http.MethodPost, "/v1/events", nil, events, true, &out); err != nil {
		return nil, err
	}
	return out.Events, nil
}
