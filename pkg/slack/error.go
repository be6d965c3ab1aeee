package slack

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/retryafter"
)

// Kind says what a caller should do about an error.
type Kind int

const (
	// Permanent: this message can never be accepted as it is
	// (channel_not_found, not_in_channel, invalid_blocks, msg_too_long, …).
	Permanent Kind = iota
	// Transient: Slack or the network failed; retry with backoff (5xx,
	// timeouts, network errors, Slack's internal_error).
	Transient
	// RateLimited: retry after RetryAfter (HTTP 429).
	RateLimited
	// Credentials: the workspace's token or the app's installation is
	// broken (invalid_auth, token_revoked, account_inactive, …). Every call
	// fails alike until an operator fixes it, and then every call works
	// again: retry with backoff, never give the message up.
	Credentials
)

func (k Kind) String() string {
	switch k {
	case Transient:
		return "transient"
	case RateLimited:
		return "rate_limited"
	case Credentials:
		return "credentials"
	}
	return "permanent"
}

// Retryable reports whether a call that failed this way may succeed later
// unchanged, so that the message must not be given up.
func (k Kind) Retryable() bool { return k != Permanent }

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

// codeKinds is the classification of Slack's error codes ("ok":false
// answers of the Web API, plain-text bodies of incoming webhooks). A code
// that is not listed is Permanent: a new code Slack invents fails one
// message visibly (notification_failed) rather than looping for ever.
var codeKinds = map[string]Kind{
	// Slack itself is failing: it says so, and it passes.
	"internal_error":      Transient,
	"fatal_error":         Transient,
	"service_unavailable": Transient,
	"request_timeout":     Transient,
	// The rate limit (normally HTTP 429 with Retry-After).
	"ratelimited":  RateLimited,
	"rate_limited": RateLimited,
	// The workspace's credentials or the app's installation: the same for
	// every message, fixed by an operator (a new token, a reinstall with the
	// scope, a reactivated account), after which the same calls succeed.
	"invalid_auth":              Credentials,
	"not_authed":                Credentials,
	"token_revoked":             Credentials,
	"token_expired":             Credentials,
	"account_inactive":          Credentials,
	"missing_scope":             Credentials,
	"no_permission":             Credentials,
	"not_allowed_token_type":    Credentials,
	"team_access_not_granted":   Credentials,
	"ekm_access_denied":         Credentials,
	"org_login_required":        Credentials,
	"two_factor_setup_required": Credentials,
	"invalid_token":             Credentials, // incoming webhooks' invalid_auth
	"team_disabled":             Credentials, // incoming webhooks
	// This message, or its channel, can never be accepted: give it up and
	// say so (notification_failed). Listed for the record; Permanent is
	// also the default.
	"channel_not_found":     Permanent,
	"not_in_channel":        Permanent,
	"is_archived":           Permanent,
	"channel_is_archived":   Permanent,
	"msg_too_long":          Permanent,
	"no_text":               Permanent,
	"invalid_blocks":        Permanent,
	"invalid_blocks_format": Permanent,
	"invalid_metadata":      Permanent,
	"invalid_arguments":     Permanent,
	"too_many_attachments":  Permanent,
	"message_not_found":     Permanent,
	"cant_update_message":   Permanent,
	"edit_window_closed":    Permanent,
	"thread_not_found":      Permanent,
	"restricted_action":     Permanent,
	"action_prohibited":     Permanent,
	"no_service":            Permanent,
	"invalid_payload":       Permanent,
}

// KindOfCode classifies one of Slack's error codes (see codeKinds).
func KindOfCode(code string) Kind { return codeKinds[code] }

// codeError classifies Slack's "ok":false answer.
func codeError(method, code string, status int, h http.Header) *Error {
	e := &Error{Method: method, Code: code, Status: status, Kind: KindOfCode(code)}
	switch {
	case status == http.StatusTooManyRequests || e.Kind == RateLimited:
		e.Kind, e.RetryAfter = RateLimited, RetryAfter(h)
	case status >= 500 && e.Kind == Permanent:
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
	e := &Error{Method: method, Code: code, Status: status, Kind: KindOfCode(code)}
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
func RetryAfter(h http.Header) time.Duration { return retryafter.Parse(h, DefaultRetryAfter) }
