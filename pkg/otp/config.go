// Package otp holds what the dispatcher and the provider adapter share about
// one-time passwords: configuration (the otp, apps and providers sections of
// herald.yaml), the delivery policy and its route plan, the start-up health
// checks of DLT template metadata, and the secrets (code generation, keyed
// hash, AES-GCM sealing of phone and code, and their keyrings).
package otp

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/sms"
)

// Delivery policies (the runbook's deliveryPolicy).
const (
	DLTWithFallback = "dlt_with_fallback"
	DLTOnly         = "dlt_only"
	QuickOnly       = "quick_only"
)

// Config is herald.yaml's otp section.
type Config struct {
	// DLTEnabled is the global DLT switch; the environment variable
	// OTP_DLT_ENABLED overrides it (read by Load, which records the source).
	DLTEnabled *bool `yaml:"dltEnabled"`
	// SealKey (AES-256, base64) seals phone and code from dispatcher to
	// adapter; HashKey (base64, ≥ 32 bytes) keys the stored HMAC. Each is one
	// key (key id "0") or a keyring "id:base64,id:base64…", current key first
	// (docs/otp.md, Key rotation). Empty: a key file generated under the data
	// dir (otp-keys.json, mode 0600).
	SealKey string `yaml:"sealKey" env:"OTP_SEAL_KEY"`
	HashKey string `yaml:"hashKey" env:"OTP_HASH_KEY"`
	// SyncTimeout bounds how long POST /v1/otp/send waits for delivery.
	SyncTimeout config.Duration `yaml:"syncTimeout" env:"OTP_SYNC_TIMEOUT"`
	// DeliveryTimeout bounds one send from dispatch to completion: retries
	// and fallbacks stop there (or at the code's expiry, if sooner).
	DeliveryTimeout config.Duration `yaml:"deliveryTimeout" env:"OTP_DELIVERY_TIMEOUT"`
	// IdempotencyTTL is how long an Idempotency-Key's answer is kept.
	IdempotencyTTL config.Duration `yaml:"idempotencyTTL"`
	// Defaults apply to every app that does not set its own value.
	Defaults AppDefaults `yaml:"defaults"`
}

// AppDefaults are the per-app settings that have platform defaults.
type AppDefaults struct {
	CodeLength        int             `yaml:"codeLength"`
	TTL               config.Duration `yaml:"ttl"`
	MaxVerifyAttempts int             `yaml:"maxVerifyAttempts"`
	ResendCooldown    config.Duration `yaml:"resendCooldown"`
	PerPhone          PhoneLimit      `yaml:"perPhone"`
	PerApp            AppLimit        `yaml:"perApp"`
}

// PhoneLimit allows Count sends to one phone per Window (Count 0: no limit).
type PhoneLimit struct {
	Count  int             `yaml:"count"`
	Window config.Duration `yaml:"window"`
}

// AppLimit is a token bucket over an app's sends (Rate 0: no limit).
type AppLimit struct {
	Rate  float64 `yaml:"rate"` // sends per second
	Burst int     `yaml:"burst"`
}

// App is one producer application (tenant).
type App struct {
	// DeliveryPolicy: dlt_with_fallback, dlt_only or quick_only.
	DeliveryPolicy string `yaml:"deliveryPolicy"`
	// LegacyRouteEnabled says whether the quick route may be used while DLT
	// is on. It follows from the policy (true unless dlt_only); setting it to
	// anything else is an error rather than a silent second policy.
	LegacyRouteEnabled *bool `yaml:"legacyRouteEnabled"`
	// Providers in order of preference (names of the providers section).
	Providers []string `yaml:"providers"`
	DLT       DLT      `yaml:"dlt"`
	// QuickText is the non-DLT message; {code}, {minutes} and {app} are
	// replaced. It must contain {code}.
	QuickText string `yaml:"quickText"`
	// Name is shown to users in messages ({app}); default the app key.
	Name string `yaml:"name"`

	CodeLength        int              `yaml:"codeLength"`
	TTL               *config.Duration `yaml:"ttl"`
	MaxVerifyAttempts int              `yaml:"maxVerifyAttempts"`
	ResendCooldown    *config.Duration `yaml:"resendCooldown"`
	PerPhone          *PhoneLimit      `yaml:"perPhone"`
	PerApp            *AppLimit        `yaml:"perApp"`

	// TestNumbers are phone numbers with a fixed code (Supabase Auth's
	// test_otp): the dispatcher issues that code, exempt from the app's and
	// the phone's limits, and the adapter answers them with the simulator
	// whatever provider the plan names: they never reach a real provider.
	TestNumbers map[string]string `yaml:"testNumbers"`
}

// DLT is an app's registered DLT template metadata.
type DLT struct {
	// Route: dlt (Fast2SMS message id + variables, the default) or
	// dlt_manual (filled text + TRAI template id + entity id).
	Route      string `yaml:"route"`
	SenderID   string `yaml:"senderId"`
	EntityID   string `yaml:"entityId"`   // principal entity id
	TemplateID string `yaml:"templateId"` // TRAI template id (19 digits)
	MessageID  string `yaml:"messageId"`  // Fast2SMS's own id of the template
	// Text is the registered template, {#var#} (or typed {#numeric#},
	// {#alphanumeric#}, {#url#}) marking each variable.
	Text      string     `yaml:"text"`
	Variables []Variable `yaml:"variables"`
}

// Variable is one template variable, in template order.
type Variable struct {
	// Value: {code}, {minutes}, {app}, or literal text.
	Value string `yaml:"value"`
	// Tag is the variable's DLT type: numeric, alphanumeric, url or var.
	Tag string `yaml:"tag"`
}

// DefaultConfig is the otp section's defaults.
func DefaultConfig() Config {
	return Config{
		SyncTimeout:     config.Duration(10 * time.Second),
		DeliveryTimeout: config.Duration(20 * time.Second),
		IdempotencyTTL:  config.Duration(24 * time.Hour),
		Defaults: AppDefaults{
			CodeLength:        6,
			TTL:               config.Duration(5 * time.Minute),
			MaxVerifyAttempts: 5,
			ResendCooldown:    config.Duration(30 * time.Second),
			PerPhone:          PhoneLimit{Count: 5, Window: config.Duration(15 * time.Minute)},
			PerApp:            AppLimit{Rate: 200, Burst: 400},
		},
	}
}

// Validate checks the otp section.
func (c *Config) Validate() error {
	switch {
	case c.SyncTimeout <= 0:
		return errors.New("syncTimeout: must be positive")
	case c.DeliveryTimeout <= 0:
		return errors.New("deliveryTimeout: must be positive")
	case c.IdempotencyTTL < config.Duration(time.Minute):
		return errors.New("idempotencyTTL: must be at least 1m")
	}
	return c.Defaults.validate("defaults")
}

func (d *AppDefaults) validate(path string) error {
	if path != "" {
		path += "."
	}
	switch {
	case d.CodeLength < 4 || d.CodeLength > 10:
		return fmt.Errorf("%scodeLength: %d is not between 4 and 10", path, d.CodeLength)
	case d.TTL < config.Duration(time.Second) || d.TTL > config.Duration(24*time.Hour):
		return fmt.Errorf("%sttl: %s is not between 1s and 24h", path, d.TTL.D())
	case d.MaxVerifyAttempts < 1 || d.MaxVerifyAttempts > 100:
		return fmt.Errorf("%smaxVerifyAttempts: %d is not between 1 and 100", path, d.MaxVerifyAttempts)
	case d.ResendCooldown < 0:
		return fmt.Errorf("%sresendCooldown: must not be negative", path)
	case d.PerPhone.Count < 0:
		return fmt.Errorf("%sperPhone.count: must not be negative", path)
	case d.PerPhone.Count > 0 && d.PerPhone.Window <= 0:
		return fmt.Errorf("%sperPhone.window: must be positive when count is set", path)
	case d.PerPhone.Count > 1000:
		return fmt.Errorf("%sperPhone.count: %d is above 1000", path, d.PerPhone.Count)
	case d.PerApp.Rate < 0:
		return fmt.Errorf("%sperApp.rate: must not be negative", path)
	case d.PerApp.Rate > 0 && d.PerApp.Burst < 1:
		return fmt.Errorf("%sperApp.burst: must be at least 1 when rate is set", path)
	}
	return nil
}

// AppSettings is an app with its defaults resolved.
type AppSettings struct {
	Name               string
	DisplayName        string
	DeliveryPolicy     string
	LegacyRouteEnabled bool
	Providers          []string
	DLT                DLT
	QuickText          string
	// TestNumbers maps a normalized phone number to its fixed code.
	TestNumbers map[string]string
	AppDefaults
}

// TestCode returns the fixed code of a test number (phone normalized).
func (a *AppSettings) TestCode(phone string) (string, bool) {
	c, ok := a.TestNumbers[phone]
	return c, ok
}

// Apps is herald.yaml's apps section.
type Apps map[string]App

var appNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Settings is everything the OTP services read from configuration.
type Settings struct {
	OTP        Config
	Apps       map[string]*AppSettings
	Providers  sms.Config
	DLTEnabled bool
	// DLTSource is where DLTEnabled came from: default, config or env.
	DLTSource string
	Keys      *Keys
	// Demo is true when no app is configured and the demo app runs on the
	// simulated provider.
	Demo bool
}

// App returns an app's settings.
func (s *Settings) App(name string) (*AppSettings, bool) {
	a, ok := s.Apps[name]
	return a, ok
}

// AppNames lists the apps in name order.
func (s *Settings) AppNames() []string {
	names := make([]string, 0, len(s.Apps))
	for n := range s.Apps {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// DemoApp is the app served when no app is configured.
const DemoApp = "demo"

// Load reads the otp, apps and providers sections, applies the environment
// (OTP_DLT_ENABLED among others), validates them together and loads or
// creates the keys under dataDir.
func Load(f *config.File, dataDir string) (*Settings, error) {
	s := &Settings{OTP: DefaultConfig(), Providers: sms.DefaultConfig(), DLTSource: "default", DLTEnabled: true}
	if err := f.Section("otp", &s.OTP); err != nil {
		return nil, err
	}
	if s.OTP.DLTEnabled != nil {
		s.DLTEnabled, s.DLTSource = *s.OTP.DLTEnabled, "config"
	}
	if v, ok := os.LookupEnv("OTP_DLT_ENABLED"); ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%w: environment OTP_DLT_ENABLED: %q is not true or false", config.ErrInvalid, v)
		}
		s.DLTEnabled, s.DLTSource = b, "env"
	}
	if err := f.Section("providers", &s.Providers); err != nil {
		return nil, err
	}
	var apps Apps
	if err := f.Section("apps", &apps); err != nil {
		return nil, err
	}
	if len(apps) == 0 {
		apps, s.Demo = demoApps(), true
	}
	s.Apps = map[string]*AppSettings{}
	for name, a := range apps {
		as, err := resolveApp(name, a, s.OTP.Defaults, &s.Providers)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: apps.%s.%w", config.ErrInvalid, f.Source(), name, err)
		}
		s.Apps[name] = as
	}
	keys, err := LoadKeys(s.OTP.SealKey, s.OTP.HashKey, dataDir)
	if err != nil {
		return nil, fmt.Errorf("%w: otp keys: %w", config.ErrInvalid, err)
	}
	s.Keys = keys
	return s, nil
}

func demoApps() Apps {
	return Apps{DemoApp: {
		DeliveryPolicy: DLTWithFallback,
		Providers:      []string{"sim"},
		DLT: DLT{
			SenderID: "HERALD", EntityID: "1701000000000000001", TemplateID: "1707000000000000001",
			MessageID: "100001", Text: "{#numeric#} is your Herald demo code. It expires in {#numeric#} minutes.",
			Variables: []Variable{{Value: "{code}", Tag: "numeric"}, {Value: "{minutes}", Tag: "numeric"}},
		},
		QuickText:   "{code} is your {app} code. It expires in {minutes} minutes.",
		TestNumbers: map[string]string{DemoTestNumber: DemoTestCode},
	}}
}

// The demo app's test number and its fixed code (the README's tour).
const (
	DemoTestNumber = "+919999900001"
	DemoTestCode   = "123456"
)

// resolveApp checks an app's settings and fills in its defaults; the first
// problem, in the order the sections are checked, is its error.
func resolveApp(name string, a App, def AppDefaults, providers *sms.Config) (*AppSettings, error) {
	if !appNamePattern.MatchString(name) {
		return nil, fmt.Errorf("name: %q must be lower-case letters, digits, '-' or '_' (up to 63)", name)
	}
	s := &AppSettings{Name: name, DisplayName: a.Name, DeliveryPolicy: a.DeliveryPolicy, Providers: a.Providers,
		DLT: a.DLT, QuickText: a.QuickText, AppDefaults: def}
	if s.DisplayName == "" {
		s.DisplayName = name
	}
	if err := s.resolvePolicy(a.LegacyRouteEnabled); err != nil {
		return nil, err
	}
	if err := s.checkProviders(providers); err != nil {
		return nil, err
	}
	if err := s.resolveDLT(); err != nil {
		return nil, err
	}
	if s.QuickText == "" {
		s.QuickText = "{code} is your {app} code. It expires in {minutes} minutes."
	}
	if !strings.Contains(s.QuickText, "{code}") {
		return nil, errors.New("quickText: must contain {code}")
	}
	s.override(a)
	if err := s.AppDefaults.validate(""); err != nil {
		return nil, err
	}
	return s, s.resolveTestNumbers(a.TestNumbers)
}

// resolveTestNumbers normalizes the test numbers and checks their codes.
func (a *AppSettings) resolveTestNumbers(in map[string]string) error {
	if len(in) == 0 {
		return nil
	}
	a.TestNumbers = make(map[string]string, len(in))
	for phone, code := range in {
		p, err := a.NormalizePhone(phone)
		if err != nil {
			return fmt.Errorf("testNumbers.%s: %w", phone, err)
		}
		if _, dup := a.TestNumbers[p]; dup {
			return fmt.Errorf("testNumbers.%s: %s is listed twice", phone, p)
		}
		if len(code) != a.CodeLength || !isDigits(code) {
			return fmt.Errorf("testNumbers.%s: the code must be %d digits (codeLength)", phone, a.CodeLength)
		}
		a.TestNumbers[p] = code
	}
	return nil
}

// resolvePolicy checks the delivery policy and derives the legacy route from
// it; legacy, when set, must agree.
func (a *AppSettings) resolvePolicy(legacy *bool) error {
	switch a.DeliveryPolicy {
	case DLTWithFallback, QuickOnly:
		a.LegacyRouteEnabled = true
	case DLTOnly:
	case "":
		return fmt.Errorf("deliveryPolicy: required (dlt_with_fallback, dlt_only or quick_only)")
	default:
		return fmt.Errorf("deliveryPolicy: %q is not dlt_with_fallback, dlt_only or quick_only", a.DeliveryPolicy)
	}
	if legacy != nil && *legacy != a.LegacyRouteEnabled {
		return fmt.Errorf("legacyRouteEnabled: %v contradicts deliveryPolicy %s (dlt_only has no legacy route; the others have one)",
			*legacy, a.DeliveryPolicy)
	}
	return nil
}

// checkProviders checks that the app's providers are known, distinct and
// configured, and that an app using DLT starts with a provider that has it.
func (a *AppSettings) checkProviders(providers *sms.Config) error {
	if len(a.Providers) == 0 {
		return errors.New("providers: at least one provider is required (fast2sms, twilio, sim)")
	}
	for i, p := range a.Providers {
		if !slices.Contains(sms.Names(), p) {
			return fmt.Errorf("providers[%d]: %q is not a provider (%s)", i, p, strings.Join(sms.Names(), ", "))
		}
		if slices.Index(a.Providers, p) != i {
			return fmt.Errorf("providers[%d]: %q is listed twice", i, p)
		}
		if err := providers.Usable(p); err != nil {
			return fmt.Errorf("providers[%d]: %w", i, err)
		}
	}
	if a.DeliveryPolicy != QuickOnly && !supportsDLT(a.Providers[0]) {
		return fmt.Errorf("providers[0]: %s has no DLT route; a %s app needs fast2sms or sim first", a.Providers[0], a.DeliveryPolicy)
	}
	return nil
}

// resolveDLT defaults the DLT route and checks the template's variable tags.
func (a *AppSettings) resolveDLT() error {
	switch a.DLT.Route {
	case "":
		a.DLT.Route = sms.RouteDLT
	case sms.RouteDLT, sms.RouteDLTManual:
	default:
		return fmt.Errorf("dlt.route: %q is not dlt or dlt_manual", a.DLT.Route)
	}
	for i, v := range a.DLT.Variables {
		switch v.Tag {
		case "numeric", "alphanumeric", "url", "var":
		default:
			return fmt.Errorf("dlt.variables[%d].tag: %q is not numeric, alphanumeric, url or var", i, v.Tag)
		}
	}
	return nil
}

// override replaces the defaults with the values the app sets.
func (a *AppSettings) override(app App) {
	if app.CodeLength != 0 {
		a.CodeLength = app.CodeLength
	}
	if app.TTL != nil {
		a.TTL = *app.TTL
	}
	if app.MaxVerifyAttempts != 0 {
		a.MaxVerifyAttempts = app.MaxVerifyAttempts
	}
	if app.ResendCooldown != nil {
		a.ResendCooldown = *app.ResendCooldown
	}
	if app.PerPhone != nil {
		a.PerPhone = *app.PerPhone
	}
	if app.PerApp != nil {
		a.PerApp = *app.PerApp
	}
}

func supportsDLT(provider string) bool { return provider == sms.Fast2SMS || provider == sms.Sim }
