package heraldtest

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fast2SMS is a fake of Fast2SMS's bulkV2 API on 127.0.0.1, speaking its
// wire format: POST /dev/bulkV2, the key in the authorization header, form
// or JSON fields; {"return":true,"request_id":…,"message":[…]} on success,
// {"return":false,"status_code":N,"message":"…"} on error (message is an
// array on success and a string on error). Replies are scripted in order;
// once the script is spent every send succeeds.
type Fast2SMS struct {
	URL    string
	APIKey string

	mu       sync.Mutex
	requests []Fast2SMSRequest
	script   []Fast2SMSReply
	hold     *Hold
	seq      int
}

// Fast2SMSRequest is one request the fake received.
type Fast2SMSRequest struct {
	Route, Numbers, SenderID, Message, VariablesValues, TemplateID, EntityID, Flash string
	Authorization, ContentType                                                      string
	Fields                                                                          url.Values
}

// Code is the OTP the request carried: the first template variable (route
// dlt) or the first run of 4-10 digits of the text.
func (r Fast2SMSRequest) Code() string {
	if r.Route == "dlt" {
		return strings.Split(r.VariablesValues, "|")[0]
	}
	return digits.FindString(r.Message)
}

var digits = regexp.MustCompile(`\b[0-9]{4,10}\b`)

// Fast2SMSReply scripts one answer.
type Fast2SMSReply struct {
	HTTPStatus int
	// Code is Fast2SMS's status_code (0: a success answer).
	Code    int
	Message string
	// Delay holds the answer (to provoke a client timeout).
	Delay time.Duration
	// Raw, when set, is sent as the body instead.
	Raw string
}

// Fast2SMS error replies of its documentation.
var (
	Fast2SMSInvalidKey      = Fast2SMSReply{HTTPStatus: 401, Code: 412, Message: "Invalid Authentication, Check Authorization Key"}
	Fast2SMSLowBalance      = Fast2SMSReply{HTTPStatus: 400, Code: 416, Message: "You don't have sufficient wallet balance."}
	Fast2SMSInvalidMsgID    = Fast2SMSReply{HTTPStatus: 400, Code: 424, Message: "Invalid Message ID"}
	Fast2SMSInvalidTemplate = Fast2SMSReply{HTTPStatus: 400, Code: 425, Message: "Invalid Template"}
	Fast2SMSDLTBlacklisted  = Fast2SMSReply{HTTPStatus: 400, Code: 500, Message: "Template or Sender ID blacklisted at DLT"}
	Fast2SMSServerError     = Fast2SMSReply{HTTPStatus: 503, Raw: "<html>503 Service Temporarily Unavailable</html>"}
)

// Hold makes the fake keep a request's answer until Release: a test can
// act (e.g. kill the caller) while the provider "has" the SMS.
type Hold struct {
	Arrived chan struct{} // closed when the held request arrives
	release chan struct{}
	once    sync.Once
}

// Release lets the held answer go.
func (h *Hold) Release() { h.once.Do(func() { close(h.release) }) }

// NewFast2SMS starts the fake; it stops when the test ends.
func NewFast2SMS(t testing.TB) *Fast2SMS {
	f := &Fast2SMS{APIKey: "test-fast2sms-key"}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		f.mu.Lock()
		if f.hold != nil {
			f.hold.Release()
		}
		f.mu.Unlock()
		srv.Close()
	})
	f.URL = srv.URL
	return f
}

// Script queues replies for the next requests.
func (f *Fast2SMS) Script(replies ...Fast2SMSReply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = append(f.script, replies...)
}

// HoldNext holds the answer to the next request until Release.
func (f *Fast2SMS) HoldNext() *Hold {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hold = &Hold{Arrived: make(chan struct{}), release: make(chan struct{})}
	return f.hold
}

// Requests returns what the fake received so far.
func (f *Fast2SMS) Requests() []Fast2SMSRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Fast2SMSRequest(nil), f.requests...)
}

func (f *Fast2SMS) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/dev/bulkV2" {
		http.NotFound(w, r)
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	fields, bad := readFields(r, mt)
	if bad != nil {
		fast2smsAnswer(w, *bad)
		return
	}
	req := Fast2SMSRequest{Route: fields.Get("route"), Numbers: fields.Get("numbers"), SenderID: fields.Get("sender_id"),
		Message: fields.Get("message"), VariablesValues: fields.Get("variables_values"), TemplateID: fields.Get("template_id"),
		EntityID: fields.Get("entity_id"), Flash: fields.Get("flash"), Authorization: r.Header.Get("authorization"),
		ContentType: mt, Fields: fields}
	reply, hold, seq := f.receive(req)
	if hold != nil {
		close(hold.Arrived)
		<-hold.release
	}
	if reply.Delay > 0 {
		select {
		case <-time.After(reply.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if req.Authorization != f.APIKey {
		fast2smsAnswer(w, Fast2SMSInvalidKey)
		return
	}
	if msg := missingField(req); msg != "" && reply.HTTPStatus == 200 {
		fast2smsAnswer(w, Fast2SMSReply{HTTPStatus: 400, Code: 402, Message: msg})
		return
	}
	if reply.HTTPStatus == 200 && reply.Code == 0 && reply.Raw == "" {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"return":true,"request_id":"f2s%08d","message":["SMS sent successfully."]}`, seq)
		return
	}
	fast2smsAnswer(w, reply)
}

// readFields reads the request's fields, a JSON object or a form as the
// content type says; bad is Fast2SMS's answer to a body it cannot read.
func readFields(r *http.Request, mt string) (url.Values, *Fast2SMSReply) {
	if mt != "application/json" {
		if err := r.ParseForm(); err != nil {
			return nil, &Fast2SMSReply{HTTPStatus: 400, Code: 400, Message: "Invalid form"}
		}
		return r.PostForm, nil
	}
	fields := url.Values{}
	var m map[string]string
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		return nil, &Fast2SMSReply{HTTPStatus: 400, Code: 400, Message: "Invalid JSON"}
	}
	for k, v := range m {
		fields.Set(k, v)
	}
	return fields, nil
}

// receive records a request and takes what the fake does with it: the next
// scripted reply, the hold set for it, and its request number.
func (f *Fast2SMS) receive(req Fast2SMSRequest) (Fast2SMSReply, *Hold, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	reply := Fast2SMSReply{HTTPStatus: 200}
	if len(f.script) > 0 {
		reply, f.script = f.script[0], f.script[1:]
	}
	hold := f.hold
	f.hold = nil
	f.seq++
	return reply, hold, f.seq
}

func missingField(r Fast2SMSRequest) string {
	switch {
	case r.Numbers == "" || len(r.Numbers) != 10:
		return "Invalid Numbers"
	case r.Route == "dlt" && (r.SenderID == "" || r.Message == "" || r.VariablesValues == ""):
		return "Sender ID, message id and variables required for route dlt"
	case r.Route == "dlt_manual" && (r.SenderID == "" || r.Message == "" || r.TemplateID == "" || r.EntityID == ""):
		return "Sender ID, message, template_id and entity_id required for route dlt_manual"
	case r.Route == "q" && r.Message == "":
		return "Message text required"
	case r.Route != "dlt" && r.Route != "dlt_manual" && r.Route != "q":
		return "Invalid route"
	}
	return ""
}

func fast2smsAnswer(w http.ResponseWriter, r Fast2SMSReply) {
	if r.Raw != "" {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(r.HTTPStatus)
		fmt.Fprint(w, r.Raw)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.HTTPStatus)
	b, _ := json.Marshal(map[string]any{"return": false, "status_code": r.Code, "message": r.Message})
	_, _ = w.Write(b)
}
