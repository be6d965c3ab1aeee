package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// fast2sms is the Fast2SMS bulkV2 client: POST {base}/dev/bulkV2 with the
// API key in the authorization header.
//
//	route=dlt         sender_id, message (Fast2SMS message id), variables_values (a|b), numbers, flash
//	route=dlt_manual  sender_id, message (filled text), template_id, entity_id, numbers, flash
//	route=q           message (free text), numbers, flash
//
// Success is {"return":true,"request_id":"…","message":["…"]}; an error is
// {"return":false,"status_code":412,"message":"…"}: message is an array on
// success and a string on error.
type fast2sms struct {
	cfg      Fast2SMSConfig
	endpoint string
	client   *http.Client
	classify *Classifier
}

// NewFast2SMS returns the Fast2SMS client.
func NewFast2SMS(cfg Fast2SMSConfig, client *http.Client) Provider {
	return &fast2sms{cfg: cfg, endpoint: strings.TrimRight(cfg.BaseURL, "/") + "/dev/bulkV2", client: client,
		classify: NewClassifier(Fast2SMSDefaults(), cfg.Classify)}
}

func (f *fast2sms) Name() string { return Fast2SMS }

// fast2smsAnswer is the response body.
type fast2smsAnswer struct {
	Return     *bool           `json:"return"`
	RequestID  string          `json:"request_id"`
	StatusCode json.RawMessage `json:"status_code"`
	Message    json.RawMessage `json:"message"`
}

// Fields builds the request fields of a message (exported for the fake and tests).
func Fast2SMSFields(m Message) (url.Values, error) {
	num, ok := strings.CutPrefix(m.To, "+91")
	if !ok || len(num) != 10 {
		return nil, fmt.Errorf("fast2sms delivers only to Indian numbers (+91 and 10 digits)")
	}
	v := url.Values{"route": {m.Route}, "numbers": {num}, "flash": {"0"}}
	switch m.Route {
	case RouteDLT:
		v.Set("sender_id", m.SenderID)
		v.Set("message", m.MessageID)
		v.Set("variables_values", strings.Join(m.Variables, "|"))
	case RouteDLTManual:
		v.Set("sender_id", m.SenderID)
		v.Set("message", m.Text)
		v.Set("template_id", m.TemplateID)
		v.Set("entity_id", m.EntityID)
	case RouteQuick:
		v.Set("message", m.Text)
		v.Set("language", "english")
	default:
		return nil, fmt.Errorf("fast2sms has no route %q", m.Route)
	}
	return v, nil
}

func (f *fast2sms) Send(ctx context.Context, m Message) Result {
	start := time.Now()
	if m.Route != RouteQuick && m.Route != RouteDLT && m.Route != RouteDLTManual {
		return Result{Class: BadRequest, Error: "fast2sms has no route " + m.Route}
	}
	fields, err := Fast2SMSFields(m)
	if err != nil {
		return Result{Class: RecipientInvalid, Error: err.Error()}
	}
	var body io.Reader
	ctype := "application/x-www-form-urlencoded"
	if f.cfg.Encoding == "json" {
		obj := map[string]string{}
		for k := range fields {
			obj[k] = fields.Get(k)
		}
		b, _ := json.Marshal(obj)
		body, ctype = bytes.NewReader(b), "application/json"
	} else {
		body = strings.NewReader(fields.Encode())
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.endpoint, body)
	if err != nil {
		return Result{Class: BadRequest, Error: err.Error()}
	}
	req.Header.Set("authorization", f.cfg.APIKey)
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", "application/json")
	r, raw, ok := exchange(f.client, req, f.cfg.Timeout.D(), start)
	if !ok {
		return r
	}
	var a fast2smsAnswer
	if jerr := json.Unmarshal(raw, &a); jerr != nil || a.Return == nil {
		r.Class = f.classify.Classify(r.StatusCode, "")
		if r.Class == OK {
			r.Class = Unknown // a 2xx that is not Fast2SMS's answer
		}
		r.Error = "unexpected answer: " + snippet(raw)
		return r
	}
	r.ProviderRequestID = a.RequestID
	r.ProviderCode = rawCode(a.StatusCode)
	if *a.Return && r.StatusCode < 300 {
		r.Class = OK
		return r
	}
	r.Error = messageText(a.Message)
	r.Class = f.classify.Classify(r.StatusCode, r.ProviderCode)
	if r.Class == OK { // return:false is never a success
		r.Class = Unknown
	}
	return r
}

// rawCode reads status_code, a number or a string.
func rawCode(b json.RawMessage) string {
	if len(b) == 0 {
		return ""
	}
	var n json.Number
	if json.Unmarshal(b, &n) == nil {
		return n.String()
	}
	var s string
	if json.Unmarshal(b, &s) == nil {
		return s
	}
	return ""
}

// messageText reads message, a string (errors) or an array (success).
func messageText(b json.RawMessage) string {
	var s string
	if json.Unmarshal(b, &s) == nil {
		return s
	}
	var ss []string
	if json.Unmarshal(b, &ss) == nil {
		return strings.Join(ss, "; ")
	}
	return snippet(b)
}

func snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// exchange sends a provider request and reads its answer (at most 64 KiB).
// When there is no answer to classify — a transport failure, a timeout, an
// unreadable body — it returns a final, transient Result and false.
func exchange(c *http.Client, req *http.Request, timeout time.Duration, start time.Time) (Result, []byte, bool) {
	resp, err := c.Do(req)
	if err != nil {
		return transportFailure(err, timeout, start), nil, false
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	r := Result{StatusCode: resp.StatusCode, Latency: time.Since(start)}
	if err != nil {
		r.Class, r.Error = Transient, "reading the answer: "+err.Error()
		return r, nil, false
	}
	return r, raw, true
}

func transportFailure(err error, timeout time.Duration, start time.Time) Result {
	r := Result{Class: Transient, Latency: time.Since(start)}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is known; keep the cause
	}
	if errors.Is(err, context.DeadlineExceeded) {
		r.Error = "timeout after " + timeout.String()
	} else {
		r.Error = err.Error()
	}
	return r
}
