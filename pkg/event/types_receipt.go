package event

// OTPDeliveryReceipt: a provider reported what became of an SMS (its
// delivery receipt webhook), correlated to the send's requestId.
type OTPDeliveryReceipt struct {
	App               string `json:"app"`
	Provider          string `json:"provider"`
	Route             string `json:"route,omitempty"`
	Status            string `json:"status"`
	ProviderStatus    string `json:"providerStatus"`
	ProviderRequestID string `json:"providerRequestId"`
	ErrorCode         string `json:"errorCode,omitempty"`
	DLTScrubCode      string `json:"dltScrubCode,omitempty"`
	Classification    string `json:"classification,omitempty"`
}

func (OTPDeliveryReceipt) EventType() Type { return "otp_delivery_receipt" }
