package sms

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// twilio is the Twilio Messages client: a form POST to
// {base}/2010-04-01/Accounts/{AccountSid}/Messages.json with basic auth;
// 201 {"sid":"SM…","status":"queued"} on success, an error
// {"code":21211,"message":"…","status":400} otherwise.
type twilio struct {
	cfg      TwilioConfig
	endpoint string
	client   *http.Client
	classify *Classifier
}

// NewTwilio returns the Twilio client.
func NewTwilio(cfg TwilioConfig, client *http.Client) Provider {
	return &twilio{cfg: cfg, client: client, classify: NewClassifier(TwilioDefaults(), cfg.Classify),
		endpoint: strings.TrimRight(cfg.BaseURL, "/") + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json"}
}

func (t *twilio) Name() string { return Twilio }

type twilioAnswer struct {
	SID     string          `json:"sid"`
	Status  json.RawMessage `json:"status"` // "queued" on success, the HTTP status on error
	Code    json.Number     `json:"code"`
	Message string          `json:"message"`
}

func (t *twilio) Send(ctx context.Context, m Message) Result {
	start := time.Now()
	form := url.Values{"To": {m.To}, "Body": {m.Text}}
	if t.cfg.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", t.cfg.MessagingServiceSID)
	} else {
		form.Set("From", t.cfg.From)
	}
	if t.cfg.StatusCallback != "" {
		form.Set("StatusCallback", t.cfg.StatusCallback)
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Result{Class: BadRequest, Error: err.Error()}
	}
	req.SetBasicAuth(t.cfg.AccountSID, t.cfg.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	r, raw, ok := exchange(t.client, req, t.cfg.Timeout.D(), start)
	if !ok {
		return r
	}
	var a twilioAnswer
	_ = json.Unmarshal(raw, &a)
	r.ProviderCode = a.Code.String()
	if r.StatusCode < 300 {
		if a.SID == "" {
			r.Class, r.Error = Unknown, "answer without a message sid: "+snippet(raw)
			return r
		}
		r.Class, r.ProviderRequestID = OK, a.SID
		return r
	}
	r.Error = a.Message
	if r.Error == "" {
		r.Error = snippet(raw)
	}
	r.Class = t.classify.Classify(r.StatusCode, r.ProviderCode)
	if r.Class == OK {
		r.Class = Unknown
	}
	return r
}

// TwilioSignature is Twilio's request signature: base64(HMAC-SHA1(authToken,
// url + every POST parameter's name and value, sorted by name)).
func TwilioSignature(authToken, fullURL string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		vs := append([]string(nil), params[k]...)
		slices.Sort(vs)
		for _, v := range vs {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	m := hmac.New(sha1.New, []byte(authToken))
	m.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ValidTwilioSignature checks a request's X-Twilio-Signature in constant time.
func ValidTwilioSignature(authToken, fullURL string, params url.Values, signature string) bool {
	if authToken == "" || signature == "" {
		return false
	}
	return hmac.Equal([]byte(TwilioSignature(authToken, fullURL, params)), []byte(signature))
}
