package otp_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/otp"
)

const dltApp = `
apps:
  bank:
    deliveryPolicy: dlt_only
    providers: [sim]
    dlt:
      senderId: BANKOT
      entityId: "1701100000000000001"
      templateId: "1707100000000000001"
      messageId: "161001"
      text: "{#numeric#} is your OTP, valid {#numeric#} min"
      variables: [{value: "{code}", tag: numeric}, {value: "{minutes}", tag: numeric}]
`

func load(t *testing.T, yaml string) (*otp.Settings, error) {
	t.Helper()
	f, err := config.Parse("herald.yaml", []byte(yaml))
	if err != nil {
		return nil, err
	}
	return otp.Load(f, t.TempDir())
}

func TestWithoutConfigTheDemoAppRunsOnTheSimulatedProvider(t *testing.T) {
	s, err := load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	a, ok := s.App(otp.DemoApp)
	if !s.Demo || !ok || a.Providers[0] != "sim" || !s.DLTEnabled || s.DLTSource != "default" {
		t.Errorf("settings %+v", s)
	}
	if p := s.Health(); len(p) != 0 {
		t.Errorf("the demo app is unhealthy: %+v", p)
	}
}

func TestTheDemoAppHasATestNumberAndConfiguredOnesAreNormalized(t *testing.T) {
	s, err := load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	demo, _ := s.App(otp.DemoApp)
	if c, ok := demo.TestCode(otp.DemoTestNumber); !ok || c != otp.DemoTestCode {
		t.Errorf("demo test number: %q %v", c, ok)
	}
	s, err = load(t, "apps:\n  shop: {deliveryPolicy: quick_only, providers: [sim], testNumbers: {'99999-00002': '000042'}}\n")
	if err != nil {
		t.Fatal(err)
	}
	shop, _ := s.App("shop")
	if c, ok := shop.TestCode("+919999900002"); !ok || c != "000042" {
		t.Errorf("shop test number: %q %v (%v)", c, ok, shop.TestNumbers)
	}
	if _, ok := shop.TestCode(otp.DemoTestNumber); ok {
		t.Error("a configured app has the demo's test number")
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown policy", "apps:\n  shop: {deliveryPolicy: carrier_pigeon, providers: [sim]}\n", "apps.shop.deliveryPolicy"},
		{"no providers", "apps:\n  shop: {deliveryPolicy: quick_only}\n", "apps.shop.providers"},
		{"unknown provider", "apps:\n  shop: {deliveryPolicy: quick_only, providers: [pigeon]}\n", "apps.shop.providers[0]"},
		{"fast2sms without a key", "apps:\n  shop: {deliveryPolicy: quick_only, providers: [fast2sms]}\n", "FAST2SMS_API_KEY"},
		{"legacy route contradicts", "apps:\n  shop: {deliveryPolicy: dlt_only, legacyRouteEnabled: true, providers: [sim]}\n", "apps.shop.legacyRouteEnabled"},
		{"twilio first for DLT", "apps:\n  shop: {deliveryPolicy: dlt_only, providers: [twilio]}\nproviders:\n  twilio: {accountSid: AC1, from: '+1500'}\n", "apps.shop."},
		{"bad code length", "apps:\n  shop: {deliveryPolicy: quick_only, providers: [sim], codeLength: 3}\n", "apps.shop.codeLength"},
		{"bad tag", "apps:\n  shop: {deliveryPolicy: dlt_only, providers: [sim], dlt: {variables: [{value: x, tag: date}]}}\n", "apps.shop.dlt.variables[0].tag"},
		{"test number not a phone", "apps:\n  shop: {deliveryPolicy: quick_only, providers: [sim], testNumbers: {'12': '123456'}}\n", "apps.shop.testNumbers.12"},
		{"test code too short", "apps:\n  shop: {deliveryPolicy: quick_only, providers: [sim], testNumbers: {'+919999900001': '123'}}\n", "apps.shop.testNumbers.+919999900001: the code must be 6 digits"},
		{"test number twice", "apps:\n  shop: {deliveryPolicy: quick_only, providers: [sim], testNumbers: {'+919999900001': '123456', '9999900001': '654321'}}\n", "is listed twice"},
		{"unknown app key", "apps:\n  shop: {deliveryPolicy: quick_only, providers: [sim], polcy: x}\n", `apps.shop: unknown key "polcy"`},
		{"bad app name", "apps:\n  Shop!: {deliveryPolicy: quick_only, providers: [sim]}\n", "apps.Shop!.name"},
		{"bad provider URL", "providers:\n  fast2sms: {baseURL: 'ftp://x'}\n", "providers.fast2sms.baseURL"},
		{"bad classification", "providers:\n  fast2sms: {classify: {'401': unpaid}}\n", "providers.fast2sms.classify.401"},
		{"bad retries", "providers:\n  twilio: {retries: 99}\n", "providers.twilio.retries"},
		{"bad sync timeout", "otp:\n  syncTimeout: 0s\n", "otp.syncTimeout"},
		{"bad default", "otp:\n  defaults: {maxVerifyAttempts: 0}\n", "otp.defaults.maxVerifyAttempts"},
		{"short seal key", "otp:\n  sealKey: c2hvcnQ=\n", "sealKey (OTP_SEAL_KEY)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.yaml)
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an invalid configuration naming %q", err, tt.want)
			}
		})
	}
}

func TestDLTSwitchComesFromTheEnvironmentOverTheFile(t *testing.T) {
	s, err := load(t, "otp: {dltEnabled: false}\n")
	if err != nil || s.DLTEnabled || s.DLTSource != "config" {
		t.Fatalf("%v %+v", err, s)
	}
	t.Setenv("OTP_DLT_ENABLED", "true")
	if s, err = load(t, "otp: {dltEnabled: false}\n"); err != nil || !s.DLTEnabled || s.DLTSource != "env" {
		t.Fatalf("%v %+v", err, s)
	}
	t.Setenv("OTP_DLT_ENABLED", "maybe")
	if _, err := load(t, ""); err == nil || !strings.Contains(err.Error(), "OTP_DLT_ENABLED") {
		t.Errorf("bad value: %v", err)
	}
}

func TestRoutePlanFollowsThePolicyAndTheGlobalSwitch(t *testing.T) {
	tests := []struct {
		policy    string
		providers []string
		dlt       bool
		want      string
		reason    string
	}{
		{otp.DLTWithFallback, []string{"sim"}, true, "sim/dlt sim/q", ""},
		{otp.DLTWithFallback, []string{"fast2sms", "twilio"}, true, "fast2sms/dlt fast2sms/q twilio/sms", ""},
		{otp.DLTOnly, []string{"fast2sms", "twilio"}, true, "fast2sms/dlt", ""},
		{otp.QuickOnly, []string{"twilio", "fast2sms"}, true, "twilio/sms fast2sms/q", "quick_only"},
		{otp.DLTWithFallback, []string{"fast2sms", "twilio"}, false, "fast2sms/q twilio/sms", "dlt_inactive"},
		{otp.DLTOnly, []string{"fast2sms", "twilio"}, false, "fast2sms/q", "dlt_inactive"},
	}
	for _, tt := range tests {
		a := &otp.AppSettings{Name: "x", DeliveryPolicy: tt.policy, Providers: tt.providers, DLT: otp.DLT{Route: "dlt"}}
		var got []string
		for _, l := range a.Plan(tt.dlt) {
			got = append(got, l.Provider+"/"+l.Route)
		}
		if strings.Join(got, " ") != tt.want || a.FirstReason(tt.dlt) != tt.reason {
			t.Errorf("%s %v dlt=%v: plan %v reason %q, want %s %q", tt.policy, tt.providers, tt.dlt, got, a.FirstReason(tt.dlt), tt.want, tt.reason)
		}
	}
}

func TestHealthFindsTemplateMetadataProblems(t *testing.T) {
	tests := []struct{ name, dlt, field, problem string }{
		{"missing template id", `{senderId: BANKOT, entityId: "1", messageId: "1", text: "{#var#}", variables: [{value: "{code}", tag: numeric}]}`, "apps.bank.dlt.templateId", "missing"},
		{"missing sender", `{entityId: "1", templateId: "1707100000000000001", messageId: "1", text: "{#var#}", variables: [{value: "{code}", tag: numeric}]}`, "apps.bank.dlt.senderId", "missing"},
		{"missing message id", `{senderId: BANKOT, entityId: "1", templateId: "1707100000000000001", text: "{#var#}", variables: [{value: "{code}", tag: numeric}]}`, "apps.bank.dlt.messageId", "missing"},
		{"variable count", `{senderId: BANKOT, entityId: "1", templateId: "1707100000000000001", messageId: "1", text: "{#var#} {#var#}", variables: [{value: "{code}", tag: numeric}]}`, "apps.bank.dlt.variables", "template has 2"},
		{"variable order", `{senderId: BANKOT, entityId: "1", templateId: "1707100000000000001", messageId: "1", text: "{#alphanumeric#} {#numeric#}", variables: [{value: "{code}", tag: numeric}, {value: "Bank", tag: alphanumeric}]}`, "apps.bank.dlt.variables[0]", "out of order"},
		{"non-numeric value", `{senderId: BANKOT, entityId: "1", templateId: "1707100000000000001", messageId: "1", text: "{#numeric#} {#numeric#}", variables: [{value: "{code}", tag: numeric}, {value: "ten", tag: numeric}]}`, "apps.bank.dlt.variables[1]", "not numeric"},
		{"too long", `{senderId: BANKOT, entityId: "1", templateId: "1707100000000000001", messageId: "1", text: "{#var#} {#var#}", variables: [{value: "{code}", tag: numeric}, {value: "abcdefghijklmnopqrstuvwxyz0123456789", tag: var}]}`, "apps.bank.dlt.variables[1]", "30"},
		{"no code", `{senderId: BANKOT, entityId: "1", templateId: "1707100000000000001", messageId: "1", text: "{#var#}", variables: [{value: "{minutes}", tag: numeric}]}`, "apps.bank.dlt.variables", "appears 0 times"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := load(t, "apps:\n  bank:\n    deliveryPolicy: dlt_only\n    providers: [sim]\n    dlt: "+tt.dlt+"\n")
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range s.Health() {
				if p.Field == tt.field && strings.Contains(p.Problem, tt.problem) {
					return
				}
			}
			t.Errorf("problems %+v, want %s: %s", s.Health(), tt.field, tt.problem)
		})
	}
	s, err := load(t, dltApp)
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Health(); len(p) != 0 {
		t.Errorf("a healthy app has problems: %+v", p)
	}
}

func TestKeysAreGeneratedOnceUnderTheDataDirWithOwnerOnlyPermissions(t *testing.T) {
	dir := t.TempDir()
	k1, err := otp.LoadKeys("", "", dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, otp.KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", err, st.Mode())
	}
	k2, err := otp.LoadKeys("", "", dir)
	if err != nil {
		t.Fatal(err)
	}
	b := otp.Binding{RequestID: "req-1", App: "shop", Provider: "fast2sms", Route: "dlt"}
	sealed := k1.Seal(b, "+919876543210", "123456")
	if strings.Contains(sealed, "123456") || strings.Contains(sealed, "9876543210") {
		t.Fatal("the seal shows the code or the phone")
	}
	if p, code, err := k2.Open(b, sealed); err != nil || code != "123456" || p != "+919876543210" {
		t.Errorf("open with the reloaded key: %q %q %v", p, code, err)
	}
	if !strings.HasPrefix(sealed, "0.") || k2.SealKeyID() != "0" || k2.HashKeyID() != "0" {
		t.Errorf("generated keys are not key id 0: %q", sealed)
	}
	kid, sum := k1.Hash("req-1", "123456")
	if !k2.Match("req-1", "123456", kid, sum) || k2.Match("req-1", "123457", kid, sum) || k2.Match("req-2", "123456", kid, sum) {
		t.Error("hash match")
	}
	other, _ := otp.LoadKeys("", "", t.TempDir())
	if _, _, err := other.Open(b, sealed); !errors.Is(err, otp.ErrSeal) {
		t.Errorf("another data dir's key opened the code: %v", err)
	}
	if err := os.Chmod(filepath.Join(dir, otp.KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := otp.LoadKeys("", "", dir); err == nil {
		t.Error("a world-readable key file was accepted")
	}
}

func TestCodesAreDigitsOfTheConfiguredLength(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c, err := otp.NewCode(6)
		if err != nil || len(c) != 6 || strings.Trim(c, "0123456789") != "" {
			t.Fatalf("code %q %v", c, err)
		}
		seen[c] = true
	}
	if len(seen) < 190 {
		t.Errorf("only %d distinct codes in 200", len(seen))
	}
}
