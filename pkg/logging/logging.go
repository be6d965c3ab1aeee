// Package logging builds Herald's slog loggers: human-readable lines on a
// terminal, JSON lines otherwise (or as configured), with secrets redacted and phone numbers masked whatever the caller passes, so a
// careless log call cannot leak an OTP or a full phone number.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"golang.org/x/term"
)

// Config is herald.yaml's log section.
type Config struct {
	Level  string `yaml:"level" env:"HERALD_LOG_LEVEL"`   // debug | info | warn | error
	Format string `yaml:"format" env:"HERALD_LOG_FORMAT"` // auto | json | text
}

// DefaultConfig logs info and above, as text on a terminal and JSON
// otherwise.
func DefaultConfig() Config { return Config{Level: "info", Format: "auto"} }

// Validate checks the section.
func (c *Config) Validate() error {
	if _, err := parseLevel(c.Level); err != nil {
		return fmt.Errorf("level: %w", err)
	}
	if c.Format != "auto" && c.Format != "json" && c.Format != "text" {
		return fmt.Errorf("format: %q is not auto, json or text", c.Format)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
	}
	return l, nil
}

// New returns a logger writing to w.
func New(cfg Config, w io.Writer) *slog.Logger {
	level, err := parseLevel(cfg.Level)
	if err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: Sanitize}
	if cfg.Format == "text" || cfg.Format == "auto" && isTerminal(w) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// isTerminal tells whether w is a terminal (people read it) rather than a
// file, a pipe or a journal (programs do).
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// Keys whose values never reach a log line.
var secretKeys = map[string]bool{
	"code": true, "otp": true, "sealedcode": true, "secret": true, "token": true, "password": true,
	"authorization": true, "apikey": true, "api_key": true, "key": true, "signature": true,
}

// Keys whose values are phone numbers.
var phoneKeys = map[string]bool{"phone": true, "to": true, "numbers": true, "msisdn": true, "recipient": true}

// Sanitize is a slog ReplaceAttr that redacts secrets and masks phone numbers.
func Sanitize(_ []string, a slog.Attr) slog.Attr {
	k := strings.ToLower(a.Key)
	switch {
	case secretKeys[k]:
		return slog.String(a.Key, "[redacted]")
	case phoneKeys[k]:
		return slog.String(a.Key, MaskPhones(a.Value.String()))
	}
	return a
}

// MaskPhone keeps a number's country prefix and last four digits:
// +919876543210 → +91******3210. Short values keep only their last two. A
// value that is already masked (has a '*') is returned as it is, so that
// masking twice does not lose the country code.
func MaskPhone(p string) string {
	if strings.Contains(p, "*") {
		return p
	}
	digits := 0
	for _, c := range p {
		if c >= '0' && c <= '9' {
			digits++
		}
	}
	if digits == 0 {
		return p
	}
	keepHead, keepTail := 0, 4
	if strings.HasPrefix(p, "+") {
		keepHead = 3 // "+" and a (typical) two-digit country code
	}
	if digits < 8 {
		keepHead, keepTail = 0, 2
	}
	b := []byte(p)
	seen := 0
	for i := range b {
		if b[i] < '0' || b[i] > '9' {
			continue
		}
		seen++
		if i >= keepHead && seen <= digits-keepTail {
			b[i] = '*'
		}
	}
	return string(b)
}

// MaskPhones masks every number of a comma-separated list (Fast2SMS's numbers field).
func MaskPhones(s string) string {
	if !strings.Contains(s, ",") {
		return MaskPhone(s)
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = MaskPhone(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}
