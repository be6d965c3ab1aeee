package otp_test

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald/pkg/otp"
)

func keyB64(b byte) string {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b
	}
	return base64.StdEncoding.EncodeToString(k)
}

func TestASealOpensOnlyForItsRequestAppLegProviderAndRoute(t *testing.T) {
	k, err := otp.LoadKeys(keyB64(1), keyB64(2), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := otp.Binding{RequestID: "req-1", App: "shop", Leg: 1, Provider: "fast2sms", Route: "q"}
	sealed := k.Seal(b, "+919876543210", "0123456789")
	tests := []struct {
		name string
		b    otp.Binding
	}{
		{"another request", otp.Binding{RequestID: "req-2", App: "shop", Leg: 1, Provider: "fast2sms", Route: "q"}},
		{"another app", otp.Binding{RequestID: "req-1", App: "bank", Leg: 1, Provider: "fast2sms", Route: "q"}},
		{"another leg", otp.Binding{RequestID: "req-1", App: "shop", Leg: 2, Provider: "fast2sms", Route: "q"}},
		{"another provider", otp.Binding{RequestID: "req-1", App: "shop", Leg: 1, Provider: "twilio", Route: "q"}},
		{"another route", otp.Binding{RequestID: "req-1", App: "shop", Leg: 1, Provider: "fast2sms", Route: "dlt"}},
		// Length prefixes: moving bytes between fields is another binding.
		{"shifted fields", otp.Binding{RequestID: "req-1s", App: "hop", Leg: 1, Provider: "fast2sms", Route: "q"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p, c, err := k.Open(tt.b, sealed); !errors.Is(err, otp.ErrSeal) || p != "" || c != "" {
				t.Errorf("opened: %q %q %v", p, c, err)
			}
		})
	}
	raw := []byte(sealed)
	raw[len(raw)-5] ^= 1
	if _, _, err := k.Open(b, string(raw)); !errors.Is(err, otp.ErrSeal) {
		t.Errorf("an altered seal opened: %v", err)
	}
	if p, c, err := k.Open(b, sealed); err != nil || p != "+919876543210" || c != "0123456789" {
		t.Errorf("own binding: %q %q %v", p, c, err)
	}
	if sealed == k.Seal(b, "+919876543210", "0123456789") {
		t.Error("two seals of the same secret are equal (nonce reuse)")
	}
}

func TestKeyRotationKeepsOldSealsAndHashesWorking(t *testing.T) {
	dir := t.TempDir()
	before, err := otp.LoadKeys(keyB64(1), keyB64(2), dir) // single-key forms: id "0"
	if err != nil {
		t.Fatal(err)
	}
	b := otp.Binding{RequestID: "req-1", App: "shop", Provider: "sim", Route: "dlt"}
	oldSeal := before.Seal(b, "+14155550123", "4242")
	oldKID, oldSum := before.Hash("req-1", "4242")
	after, err := otp.LoadKeys("2025b:"+keyB64(3)+",0:"+keyB64(1), "h2:"+keyB64(4)+", 0:"+keyB64(2), dir)
	if err != nil {
		t.Fatal(err)
	}
	if p, c, err := after.Open(b, oldSeal); err != nil || p != "+14155550123" || c != "4242" {
		t.Errorf("a seal made before the rotation: %q %q %v", p, c, err)
	}
	if oldKID != "0" || !after.Match("req-1", "4242", oldKID, oldSum) || !after.Match("req-1", "4242", "", oldSum) {
		t.Error("a hash stored before the rotation no longer verifies")
	}
	newSeal := after.Seal(b, "+14155550123", "4242")
	if !strings.HasPrefix(newSeal, "2025b.") {
		t.Errorf("new seal %q is not made with the current key", newSeal)
	}
	if _, _, err := before.Open(b, newSeal); !errors.Is(err, otp.ErrSeal) {
		t.Errorf("a process without the new key opened its seal: %v", err)
	}
	if kid, sum := after.Hash("req-1", "4242"); kid != "h2" || after.Match("req-1", "4242", "0", sum) || !after.Match("req-1", "4242", kid, sum) {
		t.Errorf("new hash key id %q", kid)
	}
	retired, err := otp.LoadKeys("2025b:"+keyB64(3), "h2:"+keyB64(4), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := retired.Open(b, oldSeal); !errors.Is(err, otp.ErrSeal) {
		t.Errorf("a retired key still opens: %v", err)
	}
	if retired.Match("req-1", "4242", oldKID, oldSum) {
		t.Error("a retired hash key still verifies")
	}
}

func TestKeyringsAreValidated(t *testing.T) {
	tests := []struct{ name, seal, want string }{
		{"short key", "c2hvcnQ=", "sealKey (OTP_SEAL_KEY)"},
		{"bad id", "a.b:" + keyB64(1), `key id "a.b"`},
		{"duplicate id", "1:" + keyB64(1) + ",1:" + keyB64(2), "listed twice"},
		{"missing id", "1:" + keyB64(1) + "," + keyB64(2), "id:base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := otp.LoadKeys(tt.seal, keyB64(2), t.TempDir()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestTheFirstKeyFileFormatStillLoadsAsKeyIDZero(t *testing.T) {
	dir := t.TempDir()
	old := `{"sealKey":"` + keyB64(1) + `","hashKey":"` + keyB64(2) + `"}`
	if err := os.WriteFile(filepath.Join(dir, otp.KeyFile), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err := otp.LoadKeys("", "", dir)
	if err != nil {
		t.Fatal(err)
	}
	configured, _ := otp.LoadKeys(keyB64(1), keyB64(2), t.TempDir())
	b := otp.Binding{RequestID: "r", App: "a", Provider: "sim", Route: "q"}
	if _, _, err := configured.Open(b, fromFile.Seal(b, "+14155550123", "1234")); err != nil || fromFile.SealKeyID() != "0" {
		t.Errorf("old key file: %v", err)
	}
	rotated := `{"sealKeys":[{"id":"1","key":"` + keyB64(3) + `"},{"id":"0","key":"` + keyB64(1) + `"}],"hashKeys":[{"id":"0","key":"` + keyB64(2) + `"}]}`
	if err := os.WriteFile(filepath.Join(dir, otp.KeyFile), []byte(rotated), 0o600); err != nil {
		t.Fatal(err)
	}
	ring, err := otp.LoadKeys("", "", dir)
	if err != nil || ring.SealKeyID() != "1" {
		t.Fatalf("keyring file: %v", err)
	}
	if _, _, err := ring.Open(b, configured.Seal(b, "+14155550123", "1234")); err != nil {
		t.Errorf("the keyring file does not open key 0's seal: %v", err)
	}
}

func BenchmarkSealAndOpen(b *testing.B) {
	k, err := otp.LoadKeys(keyB64(1), keyB64(2), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	bind := otp.Binding{RequestID: "01a23160-2575-7cf1-a48a-f30816811809", App: "shop", Provider: "fast2sms", Route: "dlt"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := k.Open(bind, k.Seal(bind, "+919876543210", "123456")); err != nil {
			b.Fatal(err)
		}
	}
}
