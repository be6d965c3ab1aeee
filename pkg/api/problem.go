package api

import (
	"encoding/json"
	"net/http"
)

// ProblemBaseURI prefixes every error code to give its RFC 9457 problem
// type: https://herald.dev/problems/<error>. docs/api.md lists them.
const ProblemBaseURI = "https://herald.dev/problems/"

// ProblemContentType is the media type of every error answer (RFC 9457).
const ProblemContentType = "application/problem+json"

// titles are the problem types' short summaries, one per error code; a code
// not listed takes its status's reason phrase. A title never varies between
// occurrences of a code: the detail says what happened this time.
var titles = map[string]string{
	"bad_request":             "Bad request",
	"body_too_large":          "Request body too large",
	"empty_body":              "Empty request body",
	"expired":                 "Code expired",
	"forbidden":               "Forbidden",
	"forbidden_event_type":    "Event type not allowed",
	"idempotency_conflict":    "Idempotent request in progress",
	"idempotency_key_reused":  "Idempotency key reused with another body",
	"interactions_disabled":   "Slack interactions not configured",
	"internal":                "Internal error",
	"invalid_by":              "Invalid author",
	"invalid_channel":         "Invalid channel",
	"invalid_code":            "Wrong code",
	"invalid_credentials":     "Invalid API key",
	"invalid_form":            "Invalid form",
	"invalid_idempotency_key": "Invalid idempotency key",
	"invalid_json":            "Invalid JSON",
	"invalid_match":           "Invalid silence matcher",
	"invalid_mode":            "Invalid delivery mode",
	"invalid_payload":         "Invalid payload",
	"invalid_phone":           "Invalid phone number",
	"invalid_query":           "Invalid query parameter",
	"invalid_receipt":         "Invalid delivery receipt",
	"invalid_request":         "Invalid request",
	"invalid_signature":       "Invalid signature",
	"invalid_silence":         "Invalid silence",
	"method_not_allowed":      "Method not allowed",
	"missing_credentials":     "API key required",
	"not_found":               "Not found",
	"phone_rate_limited":      "Too many sends to this number",
	"rate_limited":            "App over its send rate",
	"revoked":                 "Code revoked",
	"schema_violation":        "Event data violates its schema",
	"silence_expired":         "Silence already expired",
	"slash_commands_disabled": "Slack slash commands not configured",
	"sms_failed":              "SMS not delivered",
	"stale_request":           "Slack request too old",
	"standby":                 "Standby process",
	"too_many_attempts":       "Too many verification attempts",
	"unavailable":             "Service unavailable",
	"unknown_app":             "Unknown app",
	"unknown_event_type":      "Unknown event type",
	"unknown_incident":        "Unknown incident",
	"unknown_silence":         "Unknown silence",
	"unknown_subscription":    "Unknown subscription",
	"unsupported_media_type":  "Unsupported media type",
	"used":                    "Code already used",
	"webhook_not_configured":  "Webhook not configured",
	"batch_too_large":         "Batch too large",
}

// Title is the problem type's summary for an error code.
func Title(code string, status int) string {
	if t, ok := titles[code]; ok {
		return t
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error"
}

// problem is an error's RFC 9457 body: type, title and status beside
// Herald's own error and detail, then the error's extra members (which
// never replace these).
func (e *Error) problem() map[string]any {
	body := map[string]any{}
	for k, v := range e.Extra {
		body[k] = v
	}
	body["type"] = ProblemBaseURI + e.Code
	body["title"] = Title(e.Code, e.Status)
	body["status"] = e.Status
	body["error"] = e.Code
	if e.Detail != "" {
		body["detail"] = e.Detail
	}
	if e.Instance != "" {
		body["instance"] = e.Instance
	}
	return body
}

// MarshalJSON encodes the error as its problem body, as WriteError writes it
// (an answer stored to be replayed, say).
func (e *Error) MarshalJSON() ([]byte, error) { return json.Marshal(e.problem()) }
