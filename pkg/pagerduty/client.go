package pagerduty

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/retryafter"
)

// Kind says what a caller should do about an error.
type Kind int

const (
	// Permanent: PagerDuty will refuse this event whenever it is sent (400).
	Permanent Kind = iota
	// Transient: PagerDuty or the network failed; retry with backoff.
	Transient
	// RateLimited: the integration's limit is passed (429); retry after
	// RetryAfter.
	RateLimited
)

// DefaultRetryAfter is the wait after a 429 without a usable Retry-After:
// PagerDuty's limit is per minute (about 120 events per integration key),
// and it sends no Retry-After.
const DefaultRetryAfter = 5 * time.Second

// Error is a failed Events API call.
type Error struct {
	// Code is "invalid_event" (400), "rate_limited" (429), "http_<status>",
	// "network" or "invalid_response".
	Code   string
	Status int
	Kind   Kind
	// RetryAfter is set for a 429.
	RetryAfter time.Duration
	// Detail is PagerDuty's message and errors, when it gave them.
	Detail string
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pagerduty: %s", e.Code)
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Client sends events to one Events API endpoint.
type Client struct {
	url string
	hc  *http.Client
}

// NewClient returns a client of the endpoint url (DefaultURL if empty).
func NewClient(url string, hc *http.Client) *Client {
	if url == "" {
		url = DefaultURL
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{url: url, hc: hc}
}

// Send posts one event and returns PagerDuty's answer. An event that does
// not validate is not sent: it is a Permanent error, as PagerDuty's 400
// would be. Errors never contain the routing key.
func (c *Client) Send(ctx context.Context, e *Event) (Response, error) {
	if errs := e.Validate(); len(errs) > 0 {
		return Response{}, &Error{Code: "invalid_event", Kind: Permanent, Detail: strings.Join(errs, "; "), Err: errInvalid}
	}
	body, err := json.Marshal(e)
	if err != nil {
		return Response{}, &Error{Code: "invalid_event", Kind: Permanent, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return Response{}, &Error{Code: "invalid_request", Kind: Permanent, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return Response{}, &Error{Code: "network", Kind: Transient, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Response{}, &Error{Code: "network", Status: resp.StatusCode, Kind: Transient, Err: err}
	}
	return answer(resp.StatusCode, resp.Header, raw)
}

// answer classifies PagerDuty's answer.
func answer(status int, h http.Header, raw []byte) (Response, error) {
	var r Response
	decoded := json.Unmarshal(raw, &r) == nil
	switch {
	case status >= 200 && status < 300: // 202, as PagerDuty answers
		if !decoded || r.Status != "success" {
			return r, &Error{Code: "invalid_response", Status: status, Kind: Transient, Detail: truncate(string(raw), 200)}
		}
		return r, nil
	case status == http.StatusTooManyRequests:
		return r, &Error{Code: "rate_limited", Status: status, Kind: RateLimited, RetryAfter: RetryAfter(h)}
	case status == http.StatusRequestTimeout || status >= 500:
		return r, &Error{Code: "http_" + strconv.Itoa(status), Status: status, Kind: Transient, Detail: detail(r, raw)}
	case status == http.StatusBadRequest:
		return r, &Error{Code: "invalid_event", Status: status, Kind: Permanent, Detail: detail(r, raw)}
	}
	return r, &Error{Code: "http_" + strconv.Itoa(status), Status: status, Kind: Permanent, Detail: detail(r, raw)}
}

func detail(r Response, raw []byte) string {
	if r.Message == "" && len(r.Errors) == 0 {
		return truncate(string(raw), 200)
	}
	d := r.Message
	if len(r.Errors) > 0 {
		d += ": " + strings.Join(r.Errors, "; ")
	}
	return truncate(d, 500)
}

// RetryAfter reads a Retry-After header (seconds or an HTTP date);
// DefaultRetryAfter when there is none.
func RetryAfter(h http.Header) time.Duration { return retryafter.Parse(h, DefaultRetryAfter) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
