package heraldtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// Slack is a fake of Slack on 127.0.0.1: chat.postMessage and chat.update
// of the Web API with Slack's answers (HTTP 200 and "ok":false for errors,
// 429 with Retry-After when a call goes over its method's limit: posts per
// channel, other methods per workspace with WithSlackMethodRate), incoming
// webhooks (answer "ok"), and a generic JSON webhook receiver. It records
// every call and measures whether clients wait for Retry-After, per method
// and scope, before calling again.
type Slack struct {
	// APIURL is the Web API base URL to configure (ends with "/").
	APIURL string
	// Token is the bot token it accepts.
	Token string

	srv     *http.Server
	ln      net.Listener
	limit   rate.Limit
	burst   int
	retryIn int // seconds answered in Retry-After

	mu         sync.Mutex
	channels   map[string]*fakeChannel // by id
	names      map[string]string       // name → id
	calls      []SlackCall
	violations []string
	notify     chan struct{}
	seq        int64
	authError  string
	// methods limited per workspace (chat.update, …), and the end of the
	// Retry-After each method+scope was given.
	methodLimits map[string]*rate.Limiter
	notBefore    map[string]time.Time
	holds        map[string]*hold // channel (as the request names it) → its next call is held
}

type hold struct{ arrived, release chan struct{} }

type fakeChannel struct {
	id, name     string
	notMember    bool
	limiter      *rate.Limiter // chat.postMessage and incoming webhooks
	storm        int           // next calls answered 429
	serverErrors int           // next calls answered 500
	errors       []string      // next calls answered "ok":false with these codes
	lose         int           // next posts are made but their answers lost
	messages     map[string]*fakeMessage
	order        []*fakeMessage // as posted
}

// fakeMessage is a message as the fake keeps it.
type fakeMessage struct {
	ts, threadTS string
	text         string
	blocks       json.RawMessage
	metadata     json.RawMessage
	broadcast    bool
	deleted      bool
}

// SlackMessage is a message in a channel of the fake, as it is now.
type SlackMessage struct {
	TS, ThreadTS string
	Text         string
	Broadcast    bool
	// Metadata is the message's metadata as posted ({"event_type":…,"event_payload":{…}}), if any.
	Metadata json.RawMessage
	// Blocks are the message's Block Kit blocks as they are now.
	Blocks json.RawMessage
}

// SlackCall is one request the fake received.
type SlackCall struct {
	Time time.Time
	// Method is "chat.postMessage", "chat.update", "incoming_webhook" or "webhook".
	Method    string
	Channel   string // the channel id (or the webhook's name)
	TS        string // the new message's ts, or the edited one's
	ThreadTS  string
	Broadcast bool
	Text      string
	Blocks    json.RawMessage
	Body      json.RawMessage // generic webhooks: the whole body
	// Status and Error describe the answer: 200 and "" when accepted.
	Status int
	Error  string
}

// Accepted reports whether the fake answered the call with success.
func (c SlackCall) Accepted() bool { return c.Status == http.StatusOK && c.Error == "" }

// SlackOption adjusts the fake.
type SlackOption func(*Slack)

// WithSlackRate sets each channel's rate limit (default 1 message/s with a
// burst of 3, as Slack allows "short bursts"); r = 0 disables it.
func WithSlackRate(r float64, burst int) SlackOption {
	return func(s *Slack) { s.limit, s.burst = rate.Limit(r), burst }
}

// WithSlackMethodRate limits a method Slack limits per workspace
// (chat.update, chat.delete, conversations.history, conversations.replies:
// Tier 3, 50+ a minute) to perMinute with a burst; calls over it get 429.
// Without it such methods are not limited.
func WithSlackMethodRate(method string, perMinute float64, burst int) SlackOption {
	return func(s *Slack) { s.methodLimits[method] = rate.NewLimiter(rate.Limit(perMinute/60), burst) }
}

// WithRetryAfter sets the Retry-After (whole seconds, as Slack sends) of 429s.
func WithRetryAfter(seconds int) SlackOption { return func(s *Slack) { s.retryIn = seconds } }

// NewSlack starts the fake on a random 127.0.0.1 port; Close stops it.
func NewSlack(opts ...SlackOption) (*Slack, error) {
	s := &Slack{Token: "xoxb-herald-test", limit: 1, burst: 3, retryIn: 1,
		channels: map[string]*fakeChannel{}, names: map[string]string{}, notify: make(chan struct{}),
		holds: map[string]*hold{}, methodLimits: map[string]*rate.Limiter{}, notBefore: map[string]time.Time{}}
	for _, o := range opts {
		o(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/chat.postMessage", s.postMessage)
	mux.HandleFunc("POST /api/chat.update", s.update)
	mux.HandleFunc("POST /api/chat.delete", s.delete)
	mux.HandleFunc("/api/conversations.history", s.history)
	mux.HandleFunc("/api/conversations.replies", s.replies)
	mux.HandleFunc("POST /services/{name}", s.incomingWebhook)
	mux.HandleFunc("POST /hooks/{name}", s.webhook)
	s.ln, s.srv = ln, &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.APIURL = "http://" + ln.Addr().String() + "/api/"
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// StartSlack starts the fake for a test and stops it when the test ends.
func StartSlack(t testing.TB, opts ...SlackOption) *Slack {
	t.Helper()
	s, err := NewSlack(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the fake.
func (s *Slack) Close() { _ = s.srv.Close() }

// IncomingWebhookURL is the URL of an incoming webhook posting to the
// channel (or name) given.
func (s *Slack) IncomingWebhookURL(name string) string {
	return "http://" + s.ln.Addr().String() + "/services/" + name
}

// WebhookURL is the URL of a generic JSON webhook receiver.
func (s *Slack) WebhookURL(name string) string {
	return "http://" + s.ln.Addr().String() + "/hooks/" + name
}

// AddChannel creates a channel the bot is a member of.
func (s *Slack) AddChannel(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &fakeChannel{id: id, name: name, messages: map[string]*fakeMessage{}}
	if s.limit > 0 {
		c.limiter = rate.NewLimiter(s.limit, s.burst)
	}
	s.channels[id] = c
	s.names[name] = id
}

// NotInChannel makes the bot a non-member of a channel: posts get not_in_channel.
func (s *Slack) NotInChannel(id string) { s.with(id, func(c *fakeChannel) { c.notMember = true }) }

// Storm answers the channel's next n calls with 429 and Retry-After.
func (s *Slack) Storm(id string, n int) { s.with(id, func(c *fakeChannel) { c.storm += n }) }

// ServerErrors answers the channel's next n calls with HTTP 500.
func (s *Slack) ServerErrors(id string, n int) {
	s.with(id, func(c *fakeChannel) { c.serverErrors += n })
}

// FailWith answers the channel's next calls with "ok":false and these codes.
func (s *Slack) FailWith(id string, codes ...string) {
	s.with(id, func(c *fakeChannel) { c.errors = append(c.errors, codes...) })
}

// SetToken changes the token the fake accepts (others get invalid_auth).
func (s *Slack) SetToken(tok string) { s.mu.Lock(); s.Token = tok; s.mu.Unlock() }

// Hold makes the next Web API call naming channel wait, before it is
// answered, until release is called; arrived is closed when it comes.
// It lets a test act while a call is in flight.
func (s *Slack) Hold(channel string) (arrived <-chan struct{}, release func()) {
	h := &hold{arrived: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	s.holds[channel] = h
	s.mu.Unlock()
	var once sync.Once
	return h.arrived, func() { once.Do(func() { close(h.release) }) }
}

// RefuseAuth answers every Web API call with "ok":false and code (such as
// token_revoked or account_inactive) until it is called with "".
func (s *Slack) RefuseAuth(code string) { s.mu.Lock(); s.authError = code; s.mu.Unlock() }

func (s *Slack) with(id string, f func(*fakeChannel)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[id]
	if !ok {
		panic("fake slack: no channel " + id)
	}
	f(c)
}

// Calls returns every call received so far, in arrival order.
func (s *Slack) Calls() []SlackCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SlackCall(nil), s.calls...)
}

// AcceptedCalls returns the calls with an effect (posts, edits, deletes,
// webhooks) answered with success, in order; look-ups
// (conversations.history, .replies) are only in Calls.
func (s *Slack) AcceptedCalls() []SlackCall {
	var out []SlackCall
	for _, c := range s.Calls() {
		if c.Accepted() && !strings.HasPrefix(c.Method, "conversations.") {
			out = append(out, c)
		}
	}
	return out
}

// RetryAfterViolations lists the calls that came before the Retry-After of
// a 429 given to the same method and scope (the channel for posts, the
// workspace for the other methods) had elapsed.
func (s *Slack) RetryAfterViolations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// Changed returns a channel closed at the next call the fake records.
func (s *Slack) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notify
}

var channelID = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)

type slackRequest struct {
	Channel        string          `json:"channel"`
	TS             string          `json:"ts"`
	ThreadTS       string          `json:"thread_ts"`
	ReplyBroadcast bool            `json:"reply_broadcast"`
	Text           string          `json:"text"`
	Blocks         json.RawMessage `json:"blocks"`
	Metadata       json.RawMessage `json:"metadata"`
}

// readRequest reads a Web API request as Slack does: a JSON body with a
// Bearer token, or a form with the token in the Authorization header or the
// token field.
func readRequest(r *http.Request) (slackRequest, string, error) {
	var req slackRequest
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return req, "", err
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return req, token, json.Unmarshal(body, &req)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return req, "", err
	}
	if token == "" {
		token = form.Get("token")
	}
	req.Channel, req.TS, req.ThreadTS, req.Text = form.Get("channel"), form.Get("ts"), form.Get("thread_ts"), form.Get("text")
	req.ReplyBroadcast = form.Get("reply_broadcast") == "true"
	if b := form.Get("blocks"); b != "" {
		req.Blocks = json.RawMessage(b)
	}
	if m := form.Get("metadata"); m != "" {
		req.Metadata = json.RawMessage(m)
	}
	return req, token, nil
}

func (s *Slack) postMessage(w http.ResponseWriter, r *http.Request) { s.chat(w, r, "chat.postMessage") }
func (s *Slack) update(w http.ResponseWriter, r *http.Request)      { s.chat(w, r, "chat.update") }

// chat answers chat.postMessage and chat.update as Slack does, refusing in
// Slack's order: the form and the token, the channel, rate limits, then the
// message.
func (s *Slack) chat(w http.ResponseWriter, r *http.Request, method string) {
	req, token, err := readRequest(r)
	s.waitHold(req.Channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	call := SlackCall{Time: now, Method: method, Channel: req.Channel, TS: req.TS, ThreadTS: req.ThreadTS,
		Broadcast: req.ReplyBroadcast, Text: req.Text, Blocks: req.Blocks, Status: http.StatusOK}
	defer func() { s.record(call) }()
	fail := func(code string) {
		call.Error = code
		writeSlackJSON(w, http.StatusOK, map[string]any{"ok": false, "error": code})
	}
	if code := s.authFailure(token, err); code != "" {
		fail(code)
		return
	}
	id, c, code := s.channel(method, req.Channel)
	if code != "" {
		fail(code)
		return
	}
	call.Channel = id
	if s.throttled(w, c, now, &call) {
		return
	}
	if code := c.refusal(req); code != "" {
		fail(code)
		return
	}
	if method == "chat.update" {
		answer, code := s.edit(c, id, req, now)
		if code != "" {
			fail(code)
			return
		}
		writeSlackJSON(w, http.StatusOK, answer)
		return
	}
	ts, code := s.post(c, req, now)
	if code != "" {
		fail(code)
		return
	}
	call.TS = ts
	if c.lose > 0 {
		// Posted, but the answer never reaches the client (a timeout, a
		// connection cut): the client cannot know the message exists.
		c.lose--
		call.Status, call.Error = 0, "answer_lost"
		loseAnswer(w)
		return
	}
	writeSlackJSON(w, http.StatusOK, map[string]any{"ok": true, "channel": id, "ts": ts,
		"message": map[string]any{"type": "message", "subtype": "bot_message", "bot_id": "B0HERALD", "text": req.Text, "ts": ts}})
}

// authFailure is the error code of a request whose form or token Slack
// refuses, or "".
func (s *Slack) authFailure(token string, formErr error) string {
	switch {
	case formErr != nil:
		return "invalid_form_data"
	case token == "":
		return "not_authed"
	case token != s.Token:
		return "invalid_auth"
	}
	return s.authError
}

// channel finds the channel a request names, by id or (chat.postMessage
// only) by name.
func (s *Slack) channel(method, name string) (string, *fakeChannel, string) {
	id := name
	if !channelID.MatchString(id) {
		if method == "chat.update" {
			return "", nil, "channel_not_found" // chat.update needs the channel id
		}
		id = s.names[strings.TrimPrefix(id, "#")]
	}
	c, ok := s.channels[id]
	if !ok {
		return "", nil, "channel_not_found"
	}
	return id, c, ""
}

// refusal is the error code of a message the channel refuses (the bot not a
// member, an injected error, a message Slack would reject), or "".
func (c *fakeChannel) refusal(req slackRequest) string {
	if c.notMember {
		return "not_in_channel"
	}
	if len(c.errors) > 0 {
		code := c.errors[0]
		c.errors = c.errors[1:]
		return code
	}
	if code := checkMessage(req); code != "" {
		return code
	}
	return checkMetadata(req.Metadata)
}

// edit applies a chat.update and returns Slack's answer, or an error code.
func (s *Slack) edit(c *fakeChannel, id string, req slackRequest, now time.Time) (map[string]any, string) {
	m := c.messages[req.TS]
	if m == nil || m.deleted {
		return nil, "message_not_found"
	}
	m.text, m.blocks = req.Text, req.Blocks
	if len(req.Metadata) > 0 {
		m.metadata = req.Metadata
	}
	return map[string]any{"ok": true, "channel": id, "ts": req.TS, "text": req.Text,
		"message": map[string]any{"type": "message", "text": req.Text, "edited": map[string]any{"user": "B0HERALD", "ts": s.nextTS(now)}}}, ""
}

// post adds a chat.postMessage's message to the channel and returns its
// ts, or an error code.
func (s *Slack) post(c *fakeChannel, req slackRequest, now time.Time) (string, string) {
	if p := c.messages[req.ThreadTS]; req.ThreadTS != "" && (p == nil || p.deleted) {
		return "", "thread_not_found"
	}
	ts := s.nextTS(now)
	m := &fakeMessage{ts: ts, threadTS: req.ThreadTS, text: req.Text, blocks: req.Blocks, metadata: req.Metadata,
		broadcast: req.ReplyBroadcast}
	c.messages[ts] = m
	c.order = append(c.order, m)
	return ts, ""
}

// loseAnswer cuts the connection instead of answering.
func loseAnswer(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// checkMetadata applies Slack's rules for message metadata: an object with
// an event_type string and an event_payload object.
func checkMetadata(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var m struct {
		EventType    *string         `json:"event_type"`
		EventPayload json.RawMessage `json:"event_payload"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return "invalid_metadata_format"
	}
	var payload map[string]any
	if m.EventType == nil || *m.EventType == "" || len(*m.EventType) > 255 || json.Unmarshal(m.EventPayload, &payload) != nil || payload == nil {
		return "invalid_metadata_schema"
	}
	return ""
}

// LoseAnswers makes the channel's next n posts succeed without their answer
// reaching the client: the connection is cut instead.
func (s *Slack) LoseAnswers(id string, n int) { s.with(id, func(c *fakeChannel) { c.lose += n }) }

// Messages returns the channel's messages as they are now (deleted ones
// left out), oldest first.
func (s *Slack) Messages(id string) []SlackMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[id]
	if !ok {
		return nil
	}
	var out []SlackMessage
	for _, m := range c.order {
		if !m.deleted {
			out = append(out, SlackMessage{TS: m.ts, ThreadTS: m.threadTS, Text: m.text, Broadcast: m.broadcast, Metadata: m.metadata,
				Blocks: m.blocks})
		}
	}
	return out
}

// scope is what Slack limits a method by: chat.postMessage (and an
// incoming webhook) per channel, the other methods per workspace.
func scope(method, channel string) string {
	if method == "chat.postMessage" || method == "incoming_webhook" {
		return method + " " + channel
	}
	return method
}

// throttled applies the channel's scripted 429s and 500s and the method's
// rate limit, and records calls that ignored a Retry-After given to the
// same method and scope.
func (s *Slack) throttled(w http.ResponseWriter, c *fakeChannel, now time.Time, call *SlackCall) bool {
	sc := scope(call.Method, c.id)
	if nb := s.notBefore[sc]; now.Before(nb) {
		s.violations = append(s.violations, fmt.Sprintf("%s %s at %s, %s before Retry-After elapsed",
			call.Method, c.id, now.Format("15:04:05.000"), nb.Sub(now)))
	}
	lim := c.limiter
	if sc == call.Method {
		lim = s.methodLimits[call.Method]
	}
	limited := false
	switch {
	case c.storm > 0:
		c.storm--
		limited = true
	case c.serverErrors > 0:
		c.serverErrors--
		call.Status, call.Error = http.StatusInternalServerError, "http_500"
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "<html><body>Internal Server Error</body></html>")
		return true
	case lim != nil && !lim.AllowN(now, 1):
		limited = true
	}
	if !limited {
		return false
	}
	s.notBefore[sc] = now.Add(time.Duration(s.retryIn) * time.Second)
	call.Status, call.Error = http.StatusTooManyRequests, "ratelimited"
	w.Header().Set("Retry-After", strconv.Itoa(s.retryIn))
	writeSlackJSON(w, http.StatusTooManyRequests, map[string]any{"ok": false, "error": "ratelimited"})
	return true
}

// checkMessage applies Slack's limits on text and blocks.
func checkMessage(req slackRequest) string {
	if req.Text == "" && len(req.Blocks) == 0 {
		return "no_text"
	}
	if len([]rune(req.Text)) > 40000 {
		return "msg_too_long"
	}
	if len(req.Blocks) == 0 {
		return ""
	}
	var blocks []struct {
		Type     string `json:"type"`
		BlockID  string `json:"block_id"`
		Text     *struct{ Type, Text string }
		Fields   []struct{ Type, Text string }
		Elements json.RawMessage `json:"elements"`
	}
	if err := json.Unmarshal(req.Blocks, &blocks); err != nil {
		return "invalid_blocks_format"
	}
	if len(blocks) > 50 {
		return "invalid_blocks"
	}
	for _, b := range blocks {
		switch b.Type {
		case "header":
			if b.Text == nil || b.Text.Type != "plain_text" || len([]rune(b.Text.Text)) > 150 {
				return "invalid_blocks"
			}
		case "section":
			if b.Text != nil && len([]rune(b.Text.Text)) > 3000 || len(b.Fields) > 10 {
				return "invalid_blocks"
			}
			for _, f := range b.Fields {
				if len([]rune(f.Text)) > 2000 {
					return "invalid_blocks"
				}
			}
		case "actions":
			if code := checkActions(b.BlockID, b.Elements); code != "" {
				return code
			}
		case "context", "divider":
		default:
			return "invalid_blocks"
		}
	}
	return ""
}

func (s *Slack) incomingWebhook(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var req slackRequest
	jsonErr := json.Unmarshal(body, &req)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	name := r.PathValue("name")
	call := SlackCall{Time: now, Method: "incoming_webhook", Channel: name, Text: req.Text, Blocks: req.Blocks, Status: http.StatusOK}
	defer func() { s.record(call) }()
	c, ok := s.channels[s.names[name]]
	if !ok {
		call.Status, call.Error = http.StatusNotFound, "no_service"
		http.Error(w, "no_service", http.StatusNotFound)
		return
	}
	if s.throttled(w, c, now, &call) {
		return
	}
	code := checkMessage(req)
	if jsonErr != nil {
		code = "invalid_payload"
	}
	if code != "" {
		call.Status, call.Error = http.StatusBadRequest, code
		http.Error(w, code, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/html")
	_, _ = io.WriteString(w, "ok")
}

func (s *Slack) webhook(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	defer s.mu.Unlock()
	call := SlackCall{Time: time.Now(), Method: "webhook", Channel: r.PathValue("name"), Body: body, Status: http.StatusOK}
	defer func() { s.record(call) }()
	var v struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(body, &v); err != nil || r.Header.Get("Content-Type") != "application/json" {
		call.Status, call.Error = http.StatusBadRequest, "not_json"
		http.Error(w, "not json", http.StatusBadRequest)
		return
	}
	call.Text = v.Text
	w.WriteHeader(http.StatusNoContent)
}

func (s *Slack) waitHold(channel string) {
	s.mu.Lock()
	h := s.holds[channel]
	delete(s.holds, channel)
	s.mu.Unlock()
	if h != nil {
		close(h.arrived)
		<-h.release
	}
}

func (s *Slack) record(c SlackCall) {
	s.calls = append(s.calls, c)
	close(s.notify)
	s.notify = make(chan struct{})
}

// nextTS returns a message ts: Unix seconds and a unique 6-digit suffix.
func (s *Slack) nextTS(now time.Time) string {
	s.seq++
	return fmt.Sprintf("%d.%06d", now.Unix(), s.seq%1_000_000)
}

func writeSlackJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Slack) delete(w http.ResponseWriter, r *http.Request) {
	req, token, err := readRequest(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	call := SlackCall{Time: now, Method: "chat.delete", Channel: req.Channel, TS: req.TS, Status: http.StatusOK}
	defer func() { s.record(call) }()
	c, code := s.authorize(err, token, req.Channel)
	if code == "" && s.throttled(w, c, now, &call) {
		return
	}
	if code == "" {
		if m := c.messages[req.TS]; m == nil || m.deleted {
			code = "message_not_found"
		}
	}
	if code != "" {
		call.Error = code
		writeSlackJSON(w, http.StatusOK, map[string]any{"ok": false, "error": code})
		return
	}
	c.messages[req.TS].deleted = true
	writeSlackJSON(w, http.StatusOK, map[string]any{"ok": true, "channel": c.id, "ts": req.TS})
}

// authorize checks a request's token and channel id as Slack's read and
// delete methods do (they take a channel id, never a name).
func (s *Slack) authorize(reqErr error, token, channel string) (*fakeChannel, string) {
	switch {
	case reqErr != nil:
		return nil, "invalid_form_data"
	case token == "":
		return nil, "not_authed"
	case token != s.Token:
		return nil, "invalid_auth"
	case s.authError != "":
		return nil, s.authError
	}
	c, ok := s.channels[channel]
	if !ok {
		return nil, "channel_not_found"
	}
	return c, ""
}

// readParams reads a read method's arguments as Slack does: the query
// string, a form body or a JSON body; the token in the Authorization
// header or the token argument.
func readParams(r *http.Request) (url.Values, string, error) {
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var m map[string]any
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&m); err != nil {
			return nil, token, err
		}
		v := url.Values{}
		for k, x := range m {
			v.Set(k, fmt.Sprint(x))
		}
		return v, token, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, token, err
	}
	if token == "" {
		token = r.Form.Get("token")
	}
	return r.Form, token, nil
}

// historyMessage is a message as conversations.history and .replies show it.
func historyMessage(m *fakeMessage, c *fakeChannel, withMeta bool) map[string]any {
	out := map[string]any{"type": "message", "subtype": "bot_message", "bot_id": "B0HERALD", "text": m.text, "ts": m.ts}
	if m.threadTS != "" {
		out["thread_ts"] = m.threadTS
		if m.broadcast {
			out["subtype"] = "thread_broadcast"
		}
	} else {
		replies := 0
		for _, r := range c.order {
			if r.threadTS == m.ts && !r.deleted {
				replies++
			}
		}
		if replies > 0 {
			out["thread_ts"], out["reply_count"] = m.ts, replies
		}
	}
	if len(m.blocks) > 0 {
		out["blocks"] = m.blocks
	}
	if withMeta && len(m.metadata) > 0 {
		out["metadata"] = m.metadata
	}
	return out
}

// tsAfter compares Slack timestamps ("seconds.micros") as numbers.
func tsAfter(a, b string) bool {
	x, _ := strconv.ParseFloat(a, 64)
	y, _ := strconv.ParseFloat(b, 64)
	return x > y
}

// page answers one page of messages with Slack's cursor pagination: limit
// (default 100, at most 999), an opaque cursor naming the next message,
// has_more and response_metadata.next_cursor.
func page(w http.ResponseWriter, call *SlackCall, form url.Values, msgs []map[string]any) {
	limit := 100
	if v, err := strconv.Atoi(form.Get("limit")); err == nil && v > 0 {
		limit = min(v, 999)
	}
	start := 0
	if cur := form.Get("cursor"); cur != "" {
		raw, err := base64.StdEncoding.DecodeString(cur)
		next, ok := strings.CutPrefix(string(raw), "next_ts:")
		if err != nil || !ok {
			call.Error = "invalid_cursor"
			writeSlackJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_cursor"})
			return
		}
		for start < len(msgs) && msgs[start]["ts"] != next {
			start++
		}
	}
	end := min(start+limit, len(msgs))
	out := map[string]any{"ok": true, "messages": append([]map[string]any{}, msgs[start:end]...), "has_more": end < len(msgs),
		"pin_count": 0}
	if end < len(msgs) {
		out["response_metadata"] = map[string]any{"next_cursor": base64.StdEncoding.EncodeToString([]byte("next_ts:" + msgs[end]["ts"].(string)))}
	} else {
		out["response_metadata"] = map[string]any{"next_cursor": ""}
	}
	writeSlackJSON(w, http.StatusOK, out)
}

// inRange applies oldest, latest and inclusive as Slack does: exclusive
// bounds unless inclusive is true.
func inRange(ts string, form url.Values) bool {
	incl := form.Get("inclusive") == "true" || form.Get("inclusive") == "1"
	if o := form.Get("oldest"); o != "" && !(tsAfter(ts, o) || incl && !tsAfter(o, ts)) {
		return false
	}
	if l := form.Get("latest"); l != "" && !(tsAfter(l, ts) || incl && !tsAfter(ts, l)) {
		return false
	}
	return true
}

func metaWanted(form url.Values) bool {
	v := form.Get("include_all_metadata")
	return v == "true" || v == "1"
}

// history answers conversations.history: a channel's messages (not thread
// replies, except broadcast ones), newest first.
func (s *Slack) history(w http.ResponseWriter, r *http.Request) {
	form, token, err := readParams(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	call := SlackCall{Time: now, Method: "conversations.history", Channel: form.Get("channel"), Status: http.StatusOK}
	defer func() { s.record(call) }()
	c, code := s.authorize(err, token, form.Get("channel"))
	if code == "" && s.throttled(w, c, now, &call) {
		return
	}
	if code != "" {
		call.Error = code
		writeSlackJSON(w, http.StatusOK, map[string]any{"ok": false, "error": code})
		return
	}
	var msgs []map[string]any
	for i := len(c.order) - 1; i >= 0; i-- {
		m := c.order[i]
		if m.deleted || m.threadTS != "" && !m.broadcast || !inRange(m.ts, form) {
			continue
		}
		msgs = append(msgs, historyMessage(m, c, metaWanted(form)))
	}
	page(w, &call, form, msgs)
}

// replies answers conversations.replies: a thread's parent, then its
// replies oldest first.
func (s *Slack) replies(w http.ResponseWriter, r *http.Request) {
	form, token, err := readParams(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	call := SlackCall{Time: now, Method: "conversations.replies", Channel: form.Get("channel"), TS: form.Get("ts"), Status: http.StatusOK}
	defer func() { s.record(call) }()
	c, code := s.authorize(err, token, form.Get("channel"))
	if code == "" && s.throttled(w, c, now, &call) {
		return
	}
	if code == "" {
		if p := c.messages[form.Get("ts")]; p == nil || p.deleted {
			code = "thread_not_found"
		}
	}
	if code != "" {
		call.Error = code
		writeSlackJSON(w, http.StatusOK, map[string]any{"ok": false, "error": code})
		return
	}
	parent := c.messages[form.Get("ts")]
	msgs := []map[string]any{historyMessage(parent, c, metaWanted(form))}
	for _, m := range c.order {
		if m.threadTS == parent.ts && !m.deleted && inRange(m.ts, form) {
			msgs = append(msgs, historyMessage(m, c, metaWanted(form)))
		}
	}
	page(w, &call, form, msgs)
}
