package sms

import "strconv"

// Classifier reads a provider's answer: configured overrides first (the
// provider's code, then "http:<status>"), then the provider's documented
// defaults, then the HTTP status class.
type Classifier struct {
	overrides map[string]Classification
	defaults  map[string]Classification
}

// NewClassifier combines a provider's defaults with overrides from configuration.
func NewClassifier(defaults map[string]Classification, overrides map[string]string) *Classifier {
	c := &Classifier{overrides: map[string]Classification{}, defaults: defaults}
	for k, v := range overrides {
		c.overrides[k] = Classification(v)
	}
	return c
}

// Classify an answer. providerCode may be empty; status 0 means no answer
// (a timeout or a network error: transient).
func (c *Classifier) Classify(status int, providerCode string) Classification {
	httpKey := "http:" + strconv.Itoa(status)
	for _, m := range []map[string]Classification{c.overrides, c.defaults} {
		if providerCode != "" {
			if v, ok := m[providerCode]; ok {
				return v
			}
		}
		if v, ok := m[httpKey]; ok {
			return v
		}
	}
	switch {
	case status == 0 || status >= 500 || status == 429 || status == 408:
		return Transient
	case status >= 200 && status < 300:
		return OK
	case status == 401 || status == 403:
		return ProviderAuth
	case status == 402:
		return PaymentRequired
	case status >= 400:
		return BadRequest
	}
	return Unknown
}

// Fast2SMSDefaults is design §8's table of Fast2SMS's documented codes.
// Only a real HTTP 5xx or a timeout is transient: status_code 500 in the
// body (with HTTP 400) is a template or sender blacklisted at DLT.
func Fast2SMSDefaults() map[string]Classification {
	m := map[string]Classification{
		"406": BadRequest,         // invalid sender id
		"407": TemplateRejected,   // invalid words in the message
		"411": RecipientInvalid,   // invalid numbers
		"412": ProviderAuth,       // invalid authentication key
		"413": ProviderAuth,       // key disabled
		"414": ProviderAuth,       // IP blacklisted
		"415": ProviderAuth,       // account disabled
		"416": PaymentRequired,    // insufficient wallet balance
		"424": TemplateRejected,   // invalid message id
		"425": TemplateRejected,   // invalid template
		"500": TemplateRejected,   // template or sender blacklisted at DLT
		"995": RecipientThrottled, // spamming detected
		"996": ProviderAuth,       // account / KYC conditions
		"997": ProviderAuth,
		"998": PaymentRequired, // wallet conditions
		"999": PaymentRequired,
	}
	for c := 401; c <= 405; c++ {
		m[strconv.Itoa(c)] = BadRequest // missing fields
	}
	return m
}

// TwilioDefaults reads Twilio's error codes.
func TwilioDefaults() map[string]Classification {
	return map[string]Classification{
		"20003":    ProviderAuth,       // authentication failed
		"20005":    PaymentRequired,    // account not active (suspended, unpaid)
		"20429":    Transient,          // too many requests
		"21211":    RecipientInvalid,   // invalid To
		"21408":    BadRequest,         // region not enabled
		"21610":    RecipientInvalid,   // recipient unsubscribed (STOP)
		"21614":    RecipientInvalid,   // not a mobile number
		"21606":    BadRequest,         // From not usable
		"21901":    TemplateRejected,   // invalid DLT template id
		"30003":    RecipientInvalid,   // unreachable handset
		"30004":    RecipientInvalid,   // message blocked
		"30005":    RecipientInvalid,   // unknown destination
		"30006":    RecipientInvalid,   // landline or unreachable carrier
		"30007":    TemplateRejected,   // carrier filtering
		"30008":    Unknown,            // unknown error
		"30022":    RecipientThrottled, // US A2P 10DLC rate limit
		"http:429": Transient,
	}
}
