// Package api is Herald's HTTP front: one server for every service's routes,
// errors as RFC 9457 problems ({"type":…,"title":…,"status":…,"error":"code",
// "detail":"…"}), health, readiness, metrics and the OpenAPI description
// (openapi.yaml, served at GET /v1/openapi.json). Bad input gets a 4xx; a
// panic in a handler becomes a 500 that is logged, never a crash.
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/heraldhq/herald/pkg/event"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/heraldhq/herald/pkg/config"
)

// Config is herald.yaml's http section.
type Config struct {
	Addr         string       `yaml:"addr" env:"HERALD_HTTP_ADDR"`
	MaxBodyBytes config.Bytes `yaml:"maxBodyBytes"`
	// ReadTimeout bounds reading a request; WriteTimeout writing its answer
	// (a synchronous OTP send waits for delivery inside it).
	ReadTimeout  config.Duration `yaml:"readTimeout"`
	WriteTimeout config.Duration `yaml:"writeTimeout"`
	// Auth holds the API keys (LoadKeyring reads and checks them).
	Auth AuthConfig `yaml:"auth"`
}

// DefaultConfig listens on loopback only.
func DefaultConfig() Config {
	return Config{
		Addr:         "127.0.0.1:8080",
		MaxBodyBytes: 1 << 20,
		ReadTimeout:  config.Duration(10e9),
		WriteTimeout: config.Duration(30e9),
	}
}

// Validate checks the section.
func (c *Config) Validate() error {
	if c.Addr == "" {
		return errors.New("addr: must not be empty")
	}
	if c.MaxBodyBytes < 1024 {
		return fmt.Errorf("maxBodyBytes: %d is below 1KiB", c.MaxBodyBytes)
	}
	return nil
}

// Route is one handler a service contributes, with a Go 1.22 ServeMux
// pattern such as "POST /v1/events", and who may call it.
type Route struct {
	Pattern string
	Access  Access
	Handler http.Handler
}

// Error is an HTTP error answer.
type Error struct {
	Status int    `json:"-"`
	Code   string `json:"error"`
	Detail string `json:"detail,omitempty"`
	// Extra fields merged into the body (e.g. requestId, attemptsLeft).
	Extra map[string]any `json:"-"`
	// Instance is the problem's instance (RFC 9457): WriteError sets the
	// request's path when it is empty. An answer stored to be replayed sets
	// it, so that the replay is the same.
	Instance string `json:"-"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Detail) }

// Errorf builds an Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// WriteError writes err as an RFC 9457 problem (application/problem+json):
// an *Error as itself, anything else as a 500 whose detail does not leak
// internals. Every error answer goes through here, the router's 404 and 405
// and the keys' 401 and 403 included.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: "internal", Detail: "internal error; see the server log"}
	}
	body := e.problem()
	if _, ok := body["instance"]; !ok {
		if iw, ok := w.(interface{ instance() string }); ok && iw.instance() != "" {
			body["instance"] = iw.instance()
		}
	}
	writeBody(w, ProblemContentType, e.Status, body)
}

// WriteJSON writes v as a JSON answer.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	writeBody(w, "application/json", status, v)
}

func writeBody(w http.ResponseWriter, contentType string, status int, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// ReadJSONBody reads a request body of at most max bytes that must be JSON:
// 415 for another content type, 413 when too large, 400 when empty.
func ReadJSONBody(r *http.Request, max int64) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
			return nil, Errorf(http.StatusUnsupportedMediaType, "unsupported_media_type",
				"Content-Type %q is not JSON; send application/json", ct)
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, Errorf(http.StatusBadRequest, "bad_request", "reading the body: %v", err)
	}
	if int64(len(body)) > max {
		return nil, Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "the body exceeds %d bytes", max)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, Errorf(http.StatusBadRequest, "empty_body", "the body is empty; send a JSON document")
	}
	return body, nil
}

// DecodeJSON reads a JSON body into v, rejecting unknown fields and trailing data.
func DecodeJSON(r *http.Request, max int64, v any) error {
	body, err := ReadJSONBody(r, max)
	if err != nil {
		return err
	}
	return Unmarshal(body, v)
}

// Unmarshal decodes a JSON document into v as DecodeJSON does: unknown
// fields and trailing data are a 400 that says what is wrong.
func Unmarshal(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(http.StatusBadRequest, "invalid_json", "%s", describeJSONError(err))
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, "invalid_json", "unexpected data after the JSON document")
	}
	return nil
}

// FromInput turns a producer's refused input (event.InputError) into the
// HTTP answer: 413 for a batch too large, 400 otherwise. Other errors pass
// through unchanged.
func FromInput(err error) error {
	var ie *event.InputError
	if !errors.As(err, &ie) {
		return err
	}
	status := http.StatusBadRequest
	if ie.Code == "batch_too_large" {
		status = http.StatusRequestEntityTooLarge
	}
	detail := ie.Detail
	if ie.Err != nil {
		detail = describeJSONError(ie.Err)
	}
	ae := &Error{Status: status, Code: ie.Code, Detail: detail}
	if ie.Index >= 0 || ie.Violations != nil {
		ae.Extra = map[string]any{}
	}
	if ie.Index >= 0 {
		ae.Extra["index"] = ie.Index
	}
	if ie.Violations != nil {
		ae.Extra["violations"] = ie.Violations
	}
	return ae
}

func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q: got a JSON %s, want %s", te.Field, te.Value, te.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON document is truncated (" + err.Error() + ")"
	}
	return err.Error()
}
