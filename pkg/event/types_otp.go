package event

import "time"

// OTP lifecycle and delivery events. Field names follow the on-call runbook
// (requestId, deliveryPolicy, deliveryMode, legacyRouteEnabled) so that the
// queries it prescribes work on events and logs alike. Neither a code nor a
// full phone number appears in clear: the dispatch events carry both in one
// AES-GCM seal, nothing else carries them; phones elsewhere are masked.

// OTPGenerated: a code was generated and its keyed hash stored.
type OTPGenerated struct {
	App            string    `json:"app"`
	Phone          string    `json:"phone"` // masked
	CodeLength     int       `json:"codeLength"`
	ExpiresAt      time.Time `json:"expiresAt"`
	DeliveryPolicy string    `json:"deliveryPolicy"`
}

// OTPDLTDispatch is the dispatcher's request to send a code: always leg 0
// of the app's route plan, on DLT or, when the plan starts off DLT, on the
// route Reason explains. The destination phone and the code travel only
// inside Sealed, one AEAD seal bound to request id, app, leg, provider and
// route (pkg/otp.Binding); Phone is masked.
type OTPDLTDispatch struct {
	App            string    `json:"app"`
	Phone          string    `json:"phone"` // masked
	Sealed         string    `json:"sealed"`
	Provider       string    `json:"provider"`
	Route          string    `json:"route"`
	TemplateID     string    `json:"templateId,omitempty"`
	DeliveryPolicy string    `json:"deliveryPolicy"`
	Deadline       time.Time `json:"deadline"`
	// Leg is the position of this provider+route in the app's route plan:
	// 0 for a dispatch.
	Leg int `json:"leg,omitempty"`
	// Reason is why leg 0 is not on DLT (dlt_inactive, quick_only); empty on DLT.
	Reason string `json:"reason,omitempty"`
}

// OTPDLTFallback, published by the provider adapter: delivery moves off DLT
// or to the next leg. For leg 0 (DLT globally inactive, a quick-only app) it
// records why the dispatcher's leg is off DLT and carries no seal: the
// dispatch delivers that leg. For a later leg it carries that leg's seal.
type OTPDLTFallback struct {
	App            string    `json:"app"`
	Phone          string    `json:"phone"` // masked
	Sealed         string    `json:"sealed,omitempty"`
	Provider       string    `json:"provider"`
	Route          string    `json:"route"`
	FromProvider   string    `json:"fromProvider,omitempty"`
	FromRoute      string    `json:"fromRoute,omitempty"`
	Reason         string    `json:"reason"`
	DeliveryPolicy string    `json:"deliveryPolicy"`
	Deadline       time.Time `json:"deadline"`
	Leg            int       `json:"leg,omitempty"`
}

// DLTPayloadReady: the provider payload was built (the code variable redacted).
type DLTPayloadReady struct {
	App        string   `json:"app"`
	Provider   string   `json:"provider"`
	Route      string   `json:"route"`
	SenderID   string   `json:"senderId,omitempty"`
	EntityID   string   `json:"entityId,omitempty"`
	TemplateID string   `json:"templateId,omitempty"`
	MessageID  string   `json:"messageId,omitempty"`
	Variables  []string `json:"variables"`
}

// ProviderResponse is the shape shared by provider_response_received and
// provider_response_failed.
type ProviderResponse struct {
	App               string  `json:"app"`
	Provider          string  `json:"provider"`
	Route             string  `json:"route"`
	StatusCode        int     `json:"statusCode"`
	ProviderCode      string  `json:"providerCode,omitempty"`
	Classification    string  `json:"classification"`
	Attempt           int     `json:"attempt"`
	LatencyMs         float64 `json:"latencyMs"`
	ProviderRequestID string  `json:"providerRequestId,omitempty"`
	Error             string  `json:"error,omitempty"`
}

// ProviderResponseReceived: the provider accepted the message.
type ProviderResponseReceived ProviderResponse

// ProviderResponseFailed: the provider call failed (an answer or a timeout).
type ProviderResponseFailed ProviderResponse

// OTPDLTHardFailure: DLT failed and the policy allows no fallback, or the
// template was rejected.
type OTPDLTHardFailure struct {
	App            string `json:"app"`
	Provider       string `json:"provider"`
	Route          string `json:"route"`
	Reason         string `json:"reason"`
	Classification string `json:"classification,omitempty"`
	StatusCode     int    `json:"statusCode,omitempty"`
	DeliveryPolicy string `json:"deliveryPolicy"`
}

// OTPDeliveryCompleted closes a send: delivered or failed, and how.
type OTPDeliveryCompleted struct {
	App            string  `json:"app"`
	Status         string  `json:"status"`
	DeliveryMode   string  `json:"deliveryMode,omitempty"`
	Provider       string  `json:"provider,omitempty"`
	Attempts       int     `json:"attempts"`
	LatencyMs      float64 `json:"latencyMs"`
	Reason         string  `json:"reason,omitempty"`
	Classification string  `json:"classification,omitempty"`
}

// OTPNotificationFailed: the user could not be notified of their code.
type OTPNotificationFailed struct {
	App            string `json:"app"`
	Channel        string `json:"channel"`
	Provider       string `json:"provider,omitempty"`
	Reason         string `json:"reason"`
	Classification string `json:"classification,omitempty"`
}

// OTPRevoked: the code can no longer be verified.
type OTPRevoked struct {
	App    string `json:"app"`
	Reason string `json:"reason"`
}

// OTPVerified: the right code was presented, once.
type OTPVerified struct {
	App      string `json:"app"`
	Attempts int    `json:"attempts"`
}

// OTPVerificationFailed: a verify attempt was refused.
type OTPVerificationFailed struct {
	App          string `json:"app"`
	Reason       string `json:"reason"`
	AttemptsLeft int    `json:"attemptsLeft"`
}

// OTPDLTActivationStatus: the global DLT switch at start-up.
type OTPDLTActivationStatus struct {
	DLTEnabled bool   `json:"dltEnabled"`
	Source     string `json:"source"`
	Apps       int    `json:"apps"`
}

// AppPolicy is one app's effective delivery policy.
type AppPolicy struct {
	App                string   `json:"app"`
	DeliveryPolicy     string   `json:"deliveryPolicy"`
	LegacyRouteEnabled bool     `json:"legacyRouteEnabled"`
	EffectiveRoute     string   `json:"effectiveRoute"`
	FallbackRoute      string   `json:"fallbackRoute,omitempty"`
	Providers          []string `json:"providers"`
}

// OTPCutoverStatus: every app's effective policy at start-up.
type OTPCutoverStatus struct {
	DLTEnabled bool        `json:"dltEnabled"`
	Apps       []AppPolicy `json:"apps"`
}

// ConfigProblem is one problem found in an app's template metadata.
type ConfigProblem struct {
	App     string `json:"app"`
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

// OTPConfigHealth: template metadata problems found at start-up.
type OTPConfigHealth struct {
	Healthy  bool            `json:"healthy"`
	Problems []ConfigProblem `json:"problems"`
}

func (OTPGenerated) EventType() Type             { return "otp_generated" }
func (OTPDLTDispatch) EventType() Type           { return "otp_dlt_dispatch" }
func (OTPDLTFallback) EventType() Type           { return "otp_dlt_fallback" }
func (DLTPayloadReady) EventType() Type          { return "dlt_payload_ready" }
func (ProviderResponseReceived) EventType() Type { return "provider_response_received" }
func (ProviderResponseFailed) EventType() Type   { return "provider_response_failed" }
func (OTPDLTHardFailure) EventType() Type        { return "otp_dlt_hard_failure" }
func (OTPDeliveryCompleted) EventType() Type     { return "otp_delivery_completed" }
func (OTPNotificationFailed) EventType() Type    { return "otp_notification_failed" }
func (OTPRevoked) EventType() Type               { return "otp_revoked" }
func (OTPVerified) EventType() Type              { return "otp_verified" }
func (OTPVerificationFailed) EventType() Type    { return "otp_verification_failed" }
func (OTPDLTActivationStatus) EventType() Type   { return "otp_dlt_activation_status" }
func (OTPCutoverStatus) EventType() Type         { return "otp_cutover_status" }
func (OTPConfigHealth) EventType() Type          { return "otp_config_health" }
