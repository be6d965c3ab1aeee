package event

// IntegrationCallCompleted: a producer's own call to a third-party API, so
// that incident rules can watch any integration, not only SMS providers.
type IntegrationCallCompleted struct {
	Integration    string  `json:"integration"`
	Operation      string  `json:"operation"`
	StatusCode     int     `json:"statusCode"`
	LatencyMs      float64 `json:"latencyMs"`
	Error          string  `json:"error,omitempty"`
	Classification string  `json:"classification,omitempty"`
}

func (IntegrationCallCompleted) EventType() Type { return "integration_call_completed" }
