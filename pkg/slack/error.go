package slack

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Kind says what a caller should do about an error.
type Kind int

const (
	// Permanent: retrying the same request cannot succeed (channel_not_found,
	// not_in_channel, invalid_auth, invalid_blocks, …).
	Permanent Kind = iota
	// Transient: retry with backoff (5xx, network errors, Slack's internal_error).
	Transient
	// RateLimited: retry after RetryAfter (HTTP 429).
	RateLimited
)

func (k Kind) String() string {
	switch k {
	case Transient:
		return "transient"
	case RateLimited:
		return "rate_limited"
	}
	return "permanent"
}

// Error is a failed call to Slack (or to a webhook).
type Error struct {
	// Method is the API method ("chat.postMessage") or "webhook".
	Method string
	// Code is Slack's error code ("channel_not_found"), or "http_<status>",
	// "network" or "invalid_response" when Slack gave none.
	Code string
	// Status is the HTTP status, 0 when no answer arrived.
	Status     int
	Kind       Kind
	RetryAfter time.Duration
	// Err is the underlying error (network, decoding), if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "slack %s: %s", e.Method, e.Code)
	if e.Status != 0 && e.Status != http.StatusOK {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Kind == RateLimited {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf classifies any error: an *Error by its kind, anything else (a
// cancelled context, a network failure outside Slack's client) as transient.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Transient
}

// transientCodes are "ok":false codes Slack documents as temporary.
var transientCodes = map[string]bool{
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
	"ratelimited":         true,
}

// codeError classifies Slack's "ok":false answer.
func codeError(method, code string, status int, h http.Header) *Error {
	e := &Error{Method: method, Code: code, Status: status, Kind: Permanent}
	switch {
	case status == http.StatusTooManyRequests || code == "ratelimited" || code == "rate_limited":
		e.Kind, e.RetryAfter = RateLimited, RetryAfter(h)
	case status >= 500 || transientCodes[code]:
		e.Kind = Transient
	}
	return e
}

// httpError classifies a non-200 answer that carried no Slack error code.
func httpError(method string, status int, h http.Header, body string) *Error {
	code := strings.TrimSpace(body)
	if code == "" || len(code) > 64 || strings.ContainsAny(code, " <{\n") {
		code = "http_" + strconv.Itoa(status)
	}
	e := &Error{Method: method, Code: code, Status: status, Kind: Permanent}
	switch {
	case status == http.StatusTooManyRequests:
		e.Kind, e.RetryAfter = RateLimited, RetryAfter(h)
	case status >= 500, status == http.StatusRequestTimeout:
		e.Kind = Transient
	}
	return e
}

// ErrorFromStatus classifies an HTTP answer of any JSON or plain-text
// endpoint (a generic webhook): 2xx is success (nil), 429 waits for
// Retry-After, 5xx and 408 are transient, any other status is permanent.
func ErrorFromStatus(method string, status int, h http.Header, body string) error {
	if status >= 200 && status < 300 {
		return nil
	}
	return httpError(method, status, h, body)
}

// DefaultRetryAfter is used when a 429 carries no usable Retry-After.
const DefaultRetryAfter = time.Second

// RetryAfter reads a Retry-After header: delay-seconds (what Slack sends) or
// an HTTP date.
func RetryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return DefaultRetryAfter
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return DefaultRetryAfter
}
