package logging_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/heraldhq/herald/pkg/logging"
)

func TestMaskPhone(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+919876543210", "+91******3210"},
		{"9876543210", "******3210"},
		{"+14155550100", "+14*****0100"},
		{"12345", "***45"},
		{"", ""},
		{"not a number", "not a number"},
	}
	for _, tt := range tests {
		if got := logging.MaskPhone(tt.in); got != tt.want {
			t.Errorf("MaskPhone(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := logging.MaskPhones("9876543210,9123456789"); got != "******3210,******6789" {
		t.Errorf("MaskPhones: %q", got)
	}
}

func TestLoggerRedactsSecretsAndMasksPhonesWhateverTheCaller(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(logging.DefaultConfig(), &buf)
	log.Info("sent", "phone", "+919876543210", "code", "493817", "Authorization", "key-abc",
		"nested", map[string]string{"x": "y"})
	log.With("to", "+14155550100").Warn("retry", "otp", "111222")
	out := buf.String()
	for _, leak := range []string{"9876543210", "493817", "key-abc", "4155550100", "111222"} {
		if strings.Contains(out, leak) {
			t.Errorf("log line leaks %q: %s", leak, out)
		}
	}
	if !strings.Contains(out, `"phone":"+91******3210"`) || !strings.Contains(out, `"code":"[redacted]"`) {
		t.Errorf("unexpected output: %s", out)
	}
}

func TestAutoFormatIsJSONUnlessATerminalReadsIt(t *testing.T) {
	tests := []struct {
		format string
		json   bool
	}{{"auto", true}, {"json", true}, {"text", false}}
	for _, tc := range tests {
		var b bytes.Buffer // not a terminal: a file, a pipe, a journal
		logging.New(logging.Config{Level: "info", Format: tc.format}, &b).Info("hello", "k", "v")
		if got := json.Valid(b.Bytes()); got != tc.json {
			t.Errorf("format %s: JSON %v, want %v: %q", tc.format, got, tc.json, b.String())
		}
	}
}
