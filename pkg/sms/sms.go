// Package sms sends text messages through SMS providers: real HTTP clients
// for Fast2SMS (routes dlt, dlt_manual and q) and Twilio Messages, and a
// simulated provider. Every answer is classified in one taxonomy that keeps
// the raw HTTP status and the provider's own code; which code means what is
// configuration, with the providers' documented codes as defaults.
package sms

import (
	"context"
	"time"
)

// Provider names.
const (
	Fast2SMS = "fast2sms"
	Twilio   = "twilio"
	Sim      = "sim"
)

// Names lists the providers.
func Names() []string { return []string{Fast2SMS, Twilio, Sim} }

// Routes.
const (
	RouteDLT       = "dlt"        // Fast2SMS: registered template by message id + variables
	RouteDLTManual = "dlt_manual" // Fast2SMS: filled text + TRAI template id + entity id
	RouteQuick     = "q"          // Fast2SMS quick (non-DLT) route
	RouteSMS       = "sms"        // Twilio Messages
)

// QuickRoute is a provider's non-DLT route.
func QuickRoute(provider string) string {
	if provider == Twilio {
		return RouteSMS
	}
	return RouteQuick
}

// Classification is Herald's provider-independent reading of an answer.
type Classification string

// The taxonomy. Only Transient is worth retrying on the same route.
const (
	OK                 Classification = "ok"
	Transient          Classification = "transient"           // HTTP 5xx, timeout, network error, provider busy
	TemplateRejected   Classification = "template_rejected"   // DLT template / message id / content refused
	RecipientInvalid   Classification = "recipient_invalid"   // bad, unreachable or blocked number
	RecipientThrottled Classification = "recipient_throttled" // too many messages to this recipient / spam guard
	ProviderAuth       Classification = "provider_auth"       // bad or disabled key, blocked account
	PaymentRequired    Classification = "payment_required"    // wallet empty, subscription unpaid
	BadRequest         Classification = "bad_request"         // missing or invalid fields
	Unknown            Classification = "unknown"
)

// Classifications lists the taxonomy.
func Classifications() []Classification {
	return []Classification{OK, Transient, TemplateRejected, RecipientInvalid, RecipientThrottled,
		ProviderAuth, PaymentRequired, BadRequest, Unknown}
}

// Message is one SMS to send.
type Message struct {
	To    string // E.164
	Route string
	// Text is the full message (quick routes, dlt_manual, Twilio).
	Text string
	// DLT metadata.
	SenderID   string
	EntityID   string
	TemplateID string
	MessageID  string   // Fast2SMS message id (route dlt)
	Variables  []string // in template order (route dlt)
	// Visible lets the simulator show the message, code included, in its
	// outbox: demo mode and test numbers, whose codes reach no one.
	Visible bool
}

// Result is a provider's answer, classified.
type Result struct {
	Class Classification
	// StatusCode is the HTTP status; 0 when there was no answer.
	StatusCode int
	// ProviderCode is the provider's own code (Fast2SMS status_code, Twilio code).
	ProviderCode      string
	ProviderRequestID string
	// Error is the provider's message or the transport error.
	Error   string
	Latency time.Duration
}

// Provider sends one message; it never retries (the adapter does).
type Provider interface {
	Name() string
	Send(ctx context.Context, m Message) Result
}
