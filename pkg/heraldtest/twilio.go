package heraldtest

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Twilio is a fake of Twilio's Messages API on 127.0.0.1, speaking its wire
// format: POST /2010-04-01/Accounts/{AccountSid}/Messages.json with basic
// auth and form fields To, From or MessagingServiceSid, Body,
// StatusCallback; 201 with the message resource, or an error
// {"code":N,"message":"…","more_info":"…","status":S}. It can also call a
// StatusCallback the way Twilio does, signed with X-Twilio-Signature.
type Twilio struct {
	URL        string
	AccountSID string
	AuthToken  string

	mu       sync.Mutex
	requests []TwilioRequest
	script   []TwilioReply
	seq      int
}

// TwilioRequest is one message the fake received.
type TwilioRequest struct {
	To, From, MessagingServiceSID, Body, StatusCallback string
	SID                                                 string // the sid answered ("" on error)
}

// Code is the OTP the message carried: its first run of 4-10 digits.
func (r TwilioRequest) Code() string { return digits.FindString(r.Body) }

// TwilioReply scripts one answer: an error code with its HTTP status.
type TwilioReply struct {
	HTTPStatus int
	Code       int
	Message    string
	Delay      time.Duration
}

// NewTwilio starts the fake; it stops when the test ends.
func NewTwilio(t testing.TB) *Twilio {
	tw := &Twilio{AccountSID: "AC00000000000000000000000000000001", AuthToken: "test-twilio-token"}
	srv := httptest.NewServer(http.HandlerFunc(tw.serve))
	t.Cleanup(srv.Close)
	tw.URL = srv.URL
	return tw
}

// Script queues replies for the next requests.
func (tw *Twilio) Script(replies ...TwilioReply) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	tw.script = append(tw.script, replies...)
}

// Requests returns the messages received so far.
func (tw *Twilio) Requests() []TwilioRequest {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	return append([]TwilioRequest(nil), tw.requests...)
}

var e164Pattern = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

func (tw *Twilio) serve(w http.ResponseWriter, r *http.Request) {
	want := "/2010-04-01/Accounts/" + tw.AccountSID + "/Messages.json"
	if r.Method != http.MethodPost || r.URL.Path != want {
		twilioError(w, 404, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != tw.AccountSID || pass != tw.AuthToken {
		twilioError(w, 401, 20003, "Authenticate")
		return
	}
	if err := r.ParseForm(); err != nil {
		twilioError(w, 400, 21601, "Invalid form")
		return
	}
	f := r.PostForm
	req := TwilioRequest{To: f.Get("To"), From: f.Get("From"), MessagingServiceSID: f.Get("MessagingServiceSid"),
		Body: f.Get("Body"), StatusCallback: f.Get("StatusCallback")}
	tw.mu.Lock()
	reply := TwilioReply{HTTPStatus: 201}
	if len(tw.script) > 0 {
		reply, tw.script = tw.script[0], tw.script[1:]
	}
	tw.seq++
	if reply.HTTPStatus == 201 {
		req.SID = fmt.Sprintf("SM%032x", tw.seq)
	}
	tw.requests = append(tw.requests, req)
	tw.mu.Unlock()
	if reply.Delay > 0 {
		select {
		case <-time.After(reply.Delay):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case reply.HTTPStatus != 201:
		twilioError(w, reply.HTTPStatus, reply.Code, reply.Message)
	case !e164Pattern.MatchString(req.To):
		twilioError(w, 400, 21211, "The 'To' number "+req.To+" is not a valid phone number.")
	case req.Body == "":
		twilioError(w, 400, 21602, "Message body is required.")
	case req.From == "" && req.MessagingServiceSID == "":
		twilioError(w, 400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message.")
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		_ = json.NewEncoder(w).Encode(map[string]any{"sid": req.SID, "account_sid": tw.AccountSID, "to": req.To,
			"from": req.From, "body": req.Body, "status": "queued", "num_segments": "1", "error_code": nil, "error_message": nil,
			"uri": strings.TrimSuffix(want, ".json") + "/" + req.SID + ".json"})
	}
}

func twilioError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status})
}

// Sign computes X-Twilio-Signature as Twilio documents it: the full URL,
// then each POST parameter's name and value in name order, HMAC-SHA1 with
// the auth token, base64.
func (tw *Twilio) Sign(fullURL string, params url.Values) string {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	s := fullURL
	for _, k := range names {
		for _, v := range params[k] {
			s += k + v
		}
	}
	m := hmac.New(sha1.New, []byte(tw.AuthToken))
	m.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// StatusCallback posts a message status to callbackURL as Twilio does,
// signed (or with signature, when not empty, to test refusals).
func (tw *Twilio) StatusCallback(t testing.TB, callbackURL, sid, status, errorCode, signature string) *Response {
	t.Helper()
	return tw.StatusCallbackVia(t, callbackURL, callbackURL, sid, status, errorCode, signature)
}

// StatusCallbackVia signs the callback for publicURL, the URL Twilio was
// given (a proxy's, say), and posts it to target, where Herald listens.
func (tw *Twilio) StatusCallbackVia(t testing.TB, target, publicURL, sid, status, errorCode, signature string) *Response {
	t.Helper()
	callbackURL := publicURL
	form := url.Values{"MessageSid": {sid}, "SmsSid": {sid}, "MessageStatus": {status}, "SmsStatus": {status},
		"AccountSid": {tw.AccountSID}, "ApiVersion": {"2010-04-01"}}
	// Twilio's callbacks carry the message's numbers too.
	for _, m := range tw.Requests() {
		if m.SID == sid {
			form.Set("To", m.To)
			form.Set("From", m.From)
		}
	}
	if errorCode != "" {
		form.Set("ErrorCode", errorCode)
	}
	if signature == "" {
		signature = tw.Sign(callbackURL, form)
	}
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", signature)
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	return Send(t, req)
}
