package sms

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/config"
)

// Config is herald.yaml's providers section.
type Config struct {
	// Concurrency is how many sends the provider adapter runs at once; slow
	// providers need many in flight.
	Concurrency int            `yaml:"concurrency" env:"HERALD_PROVIDER_CONCURRENCY"`
	Fast2SMS    Fast2SMSConfig `yaml:"fast2sms"`
	Twilio      TwilioConfig   `yaml:"twilio"`
	Sim         SimConfig      `yaml:"sim"`
}

// Common are the settings every provider has.
type Common struct {
	// Timeout bounds one HTTP call.
	Timeout config.Duration `yaml:"timeout"`
	// Retries is how many more times a transient failure is tried on the
	// same route (within the OTP's delivery deadline).
	Retries int `yaml:"retries"`
	// Backoff is the first delay between tries (exponential, jittered).
	Backoff config.Duration `yaml:"backoff"`
	Breaker Breaker         `yaml:"breaker"`
	// Classify overrides the default reading of answers: keys are the
	// provider's code ("412", "21211") or "http:<status>" ("http:401");
	// values are classifications. A provider's 401 may mean "unpaid".
	Classify map[string]string `yaml:"classify"`
}

// Breaker opens a provider+route's circuit after Failures consecutive
// transient failures, for OpenFor, then lets one try through.
type Breaker struct {
	Failures int             `yaml:"failures"`
	OpenFor  config.Duration `yaml:"openFor"`
}

// Fast2SMSConfig configures Fast2SMS.
type Fast2SMSConfig struct {
	BaseURL string `yaml:"baseURL" env:"FAST2SMS_BASE_URL"`
	APIKey  string `yaml:"-" env:"FAST2SMS_API_KEY"`
	// Encoding of the request body: form (default) or json.
	Encoding string `yaml:"encoding"`
	// WebhookToken, when set, must be given as ?token= on delivery receipts
	// (Fast2SMS does not sign its webhooks).
	WebhookToken string `yaml:"-" env:"FAST2SMS_WEBHOOK_TOKEN"`
	Common       `yaml:",inline"`
}

// TwilioConfig configures Twilio Messages.
type TwilioConfig struct {
	BaseURL             string `yaml:"baseURL" env:"TWILIO_BASE_URL"`
	AccountSID          string `yaml:"accountSid" env:"TWILIO_ACCOUNT_SID"`
	AuthToken           string `yaml:"-" env:"TWILIO_AUTH_TOKEN"`
	From                string `yaml:"from" env:"TWILIO_FROM"`
	MessagingServiceSID string `yaml:"messagingServiceSid" env:"TWILIO_MESSAGING_SERVICE_SID"`
	// StatusCallback is the public URL of POST /v1/webhooks/twilio, given to
	// Twilio with each message and used to check its signatures.
	StatusCallback string `yaml:"statusCallback" env:"TWILIO_STATUS_CALLBACK"`
	Common         `yaml:",inline"`
}

// SimConfig configures the simulated provider.
type SimConfig struct {
	Latency config.Duration `yaml:"latency"`
	Jitter  config.Duration `yaml:"jitter"`
	// FailureRate is the fraction of sends that fail (0..1), as FailWith.
	FailureRate float64 `yaml:"failureRate"`
	FailWith    string  `yaml:"failWith"`
	// FailRoutes limits failures to these routes (default: every route).
	FailRoutes []string `yaml:"failRoutes"`
	Common     `yaml:",inline"`
}

func defaultCommon() Common {
	return Common{Timeout: config.Duration(5 * time.Second), Retries: 2, Backoff: config.Duration(200 * time.Millisecond),
		Breaker: Breaker{Failures: 5, OpenFor: config.Duration(30 * time.Second)}}
}

// DefaultConfig has the providers' public endpoints.
func DefaultConfig() Config {
	return Config{
		Concurrency: 256,
		Fast2SMS:    Fast2SMSConfig{BaseURL: "https://www.fast2sms.com", Encoding: "form", Common: defaultCommon()},
		Twilio:      TwilioConfig{BaseURL: "https://api.twilio.com", Common: defaultCommon()},
		Sim:         SimConfig{Latency: config.Duration(2 * time.Millisecond), FailWith: string(Transient), Common: defaultCommon()},
	}
}

// Validate checks the section.
func (c *Config) Validate() error {
	if c.Concurrency < 1 || c.Concurrency > 10000 {
		return fmt.Errorf("concurrency: %d is not between 1 and 10000", c.Concurrency)
	}
	for name, u := range map[string]string{"fast2sms.baseURL": c.Fast2SMS.BaseURL, "twilio.baseURL": c.Twilio.BaseURL} {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return fmt.Errorf("%s: %q is not an http(s) URL", name, u)
		}
	}
	if c.Fast2SMS.Encoding != "form" && c.Fast2SMS.Encoding != "json" {
		return fmt.Errorf("fast2sms.encoding: %q is not form or json", c.Fast2SMS.Encoding)
	}
	if c.Twilio.StatusCallback != "" {
		if pu, err := url.Parse(c.Twilio.StatusCallback); err != nil || pu.Host == "" {
			return fmt.Errorf("twilio.statusCallback: %q is not a URL", c.Twilio.StatusCallback)
		}
	}
	if c.Sim.FailureRate < 0 || c.Sim.FailureRate > 1 {
		return fmt.Errorf("sim.failureRate: %v is not between 0 and 1", c.Sim.FailureRate)
	}
	if !slices.Contains(Classifications(), Classification(c.Sim.FailWith)) || c.Sim.FailWith == string(OK) {
		return fmt.Errorf("sim.failWith: %q is not a failure classification", c.Sim.FailWith)
	}
	for name, cm := range map[string]*Common{Fast2SMS: &c.Fast2SMS.Common, Twilio: &c.Twilio.Common, Sim: &c.Sim.Common} {
		if err := cm.validate(name); err != nil {
			return err
		}
	}
	return nil
}

func (c *Common) validate(name string) error {
	switch {
	case c.Timeout <= 0:
		return fmt.Errorf("%s.timeout: must be positive", name)
	case c.Retries < 0 || c.Retries > 10:
		return fmt.Errorf("%s.retries: %d is not between 0 and 10", name, c.Retries)
	case c.Backoff <= 0:
		return fmt.Errorf("%s.backoff: must be positive", name)
	case c.Breaker.Failures < 1:
		return fmt.Errorf("%s.breaker.failures: must be at least 1", name)
	case c.Breaker.OpenFor <= 0:
		return fmt.Errorf("%s.breaker.openFor: must be positive", name)
	}
	for k, v := range c.Classify {
		if !slices.Contains(Classifications(), Classification(v)) {
			return fmt.Errorf("%s.classify.%s: %q is not one of %s", name, k, v, joinClasses())
		}
		if code, ok := strings.CutPrefix(k, "http:"); ok {
			if n, err := strconv.Atoi(code); err != nil || n < 100 || n > 599 {
				return fmt.Errorf("%s.classify.%s: %q is not an HTTP status", name, k, code)
			}
		}
	}
	return nil
}

func joinClasses() string {
	var s []string
	for _, c := range Classifications() {
		s = append(s, string(c))
	}
	return strings.Join(s, ", ")
}

// Common returns a provider's common settings.
func (c *Config) Common(provider string) *Common {
	switch provider {
	case Fast2SMS:
		return &c.Fast2SMS.Common
	case Twilio:
		return &c.Twilio.Common
	}
	return &c.Sim.Common
}

// Usable reports why a provider cannot be used by an app (missing credentials).
func (c *Config) Usable(provider string) error {
	switch provider {
	case Fast2SMS:
		if c.Fast2SMS.APIKey == "" {
			return errors.New("fast2sms needs an API key: set FAST2SMS_API_KEY")
		}
	case Twilio:
		if c.Twilio.AccountSID == "" || c.Twilio.AuthToken == "" {
			return errors.New("twilio needs providers.twilio.accountSid (TWILIO_ACCOUNT_SID) and TWILIO_AUTH_TOKEN")
		}
		if c.Twilio.From == "" && c.Twilio.MessagingServiceSID == "" {
			return errors.New("twilio needs providers.twilio.from or messagingServiceSid")
		}
	}
	return nil
}
