package event

// IntegrationCallCompleted: a producer's own call to a third-party API, so
// that incident rules can watch any integration, not only SMS providers.
type IntegrationCallCompleted struct {
	Integration string  `json:"integration"`
	Operation   string  `json:"operation"`
	StatusCode  int     `json:"statusCode"`
	LatencyMs   float64 `json:"latencyMs"`
	Error       string  `json:"error,omitempty"`
	// ErrorCode is the third party's own error code, if it gave one.
	ErrorCode string `json:"errorCode,omitempty"`
	// Classification is what the answer means (payment_required): the
	// producer's, or Herald's from its classification rules (pkg/classify),
	// with the reason they give.
	Classification       string `json:"classification,omitempty"`
	ClassificationReason string `json:"classificationReason,omitempty"`
}

func (IntegrationCallCompleted) EventType() Type { return "integration_call_completed" }
