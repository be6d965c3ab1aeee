package heraldtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// PagerDuty is a fake of PagerDuty's Events API v2 on 127.0.0.1, speaking
// its wire format: POST /v2/enqueue with a JSON event {routing_key,
// event_action trigger|acknowledge|resolve, dedup_key, payload{summary,
// source, severity, timestamp, component, group, class, custom_details},
// client, client_url, links, images}; 202 {"status":"success","message":
// "Event processed","dedup_key":…}, or 400 {"status":"invalid event",
// "message":"Event object is invalid","errors":[…]}. It checks what
// PagerDuty checks on its own (not with pkg/pagerduty's code), keeps the
// alerts by dedup_key, and can be scripted to answer 429 or 500 instead.
type PagerDuty struct {
	// URL is the enqueue endpoint, RoutingKey the only integration key it
	// accepts.
	URL        string
	RoutingKey string

	mu     sync.Mutex
	calls  []PagerDutyCall
	script []PagerDutyReply
	alerts map[string]*PagerDutyAlert
	notify chan struct{}
}

// PagerDutyCall is one request the fake received and what it answered.
type PagerDutyCall struct {
	Time       time.Time
	Action     string // event_action
	DedupKey   string // as sent ("" when the event had none)
	RoutingKey string
	Severity   string
	Summary    string
	Source     string
	Body       json.RawMessage
	// Status is the HTTP status answered: 202 when accepted; Errors are a
	// 400's errors.
	Status int
	Errors []string
}

// Accepted reports whether the fake accepted the event.
func (c PagerDutyCall) Accepted() bool { return c.Status == http.StatusAccepted }

// PagerDutyAlert is an alert as the fake keeps it, by dedup_key.
type PagerDutyAlert struct {
	Status   string // triggered, acknowledged, resolved
	Severity string
	Summary  string
	Events   int
}

// PagerDutyReply scripts one answer instead of processing the event:
// HTTPStatus (429, 500, 400…) with an optional Retry-After header.
type PagerDutyReply struct {
	HTTPStatus int
	RetryAfter string
}

// StartPagerDuty starts the fake; it stops when the test ends.
func StartPagerDuty(t testing.TB) *PagerDuty {
	p := &PagerDuty{RoutingKey: "R0123456789abcdefghijklmnopqrstu", alerts: map[string]*PagerDutyAlert{},
		notify: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/enqueue", p.enqueue)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p.URL = srv.URL + "/v2/enqueue"
	return p
}

// Script queues answers for the next calls, in order.
func (p *PagerDuty) Script(r ...PagerDutyReply) {
	p.mu.Lock()
	p.script = append(p.script, r...)
	p.mu.Unlock()
}

// Calls are every request received, in order.
func (p *PagerDuty) Calls() []PagerDutyCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]PagerDutyCall(nil), p.calls...)
}

// Alert is the alert of a dedup_key as it is now (ok false: none).
func (p *PagerDuty) Alert(dedupKey string) (PagerDutyAlert, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.alerts[dedupKey]
	if !ok {
		return PagerDutyAlert{}, false
	}
	return *a, true
}

// Changed returns a channel closed at the next call the fake records.
func (p *PagerDuty) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.notify
}

// WaitCalls waits until the fake has received n calls and returns them.
func (p *PagerDuty) WaitCalls(t testing.TB, n int, within time.Duration) []PagerDutyCall {
	t.Helper()
	deadline := time.After(within)
	for {
		changed := p.Changed()
		if got := p.Calls(); len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("waited %s for %d PagerDuty calls; got %d: %+v", within, n, len(p.Calls()), p.Calls())
		}
	}
}

type pdEvent struct {
	RoutingKey  *string          `json:"routing_key"`
	EventAction *string          `json:"event_action"`
	DedupKey    *string          `json:"dedup_key"`
	Payload     *json.RawMessage `json:"payload"`
	Client      *string          `json:"client"`
	ClientURL   *string          `json:"client_url"`
	Links       []struct {
		Href string `json:"href"`
		Text string `json:"text"`
	} `json:"links"`
	Images []struct {
		Src  string `json:"src"`
		Href string `json:"href"`
		Alt  string `json:"alt"`
	} `json:"images"`
}

type pdPayload struct {
	Summary       string          `json:"summary"`
	Source        string          `json:"source"`
	Severity      string          `json:"severity"`
	Timestamp     *string         `json:"timestamp"`
	Component     string          `json:"component"`
	Group         string          `json:"group"`
	Class         string          `json:"class"`
	CustomDetails json.RawMessage `json:"custom_details"`
}

var pdKey = regexp.MustCompile(`^[A-Za-z0-9]+$`)

var pdTimestamp = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)

func (p *PagerDuty) enqueue(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	call := PagerDutyCall{Time: time.Now(), Body: body}
	var ev pdEvent
	var pl pdPayload
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var errs []string
	if r.Header.Get("Content-Type") != "application/json" {
		errs = append(errs, "Content-Type must be application/json")
	}
	if err := dec.Decode(&ev); err != nil {
		errs = append(errs, "Invalid JSON: "+err.Error())
	}
	call.RoutingKey, call.Action, call.DedupKey = deref(ev.RoutingKey), deref(ev.EventAction), deref(ev.DedupKey)
	if ev.Payload != nil {
		pd := json.NewDecoder(bytes.NewReader(*ev.Payload))
		pd.DisallowUnknownFields()
		if err := pd.Decode(&pl); err != nil {
			errs = append(errs, "'payload' is invalid: "+err.Error())
		}
		call.Severity, call.Summary, call.Source = pl.Severity, pl.Summary, pl.Source
	}
	errs = append(errs, p.check(call, ev, pl)...)

	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.record(&call)
	if len(p.script) > 0 {
		reply := p.script[0]
		p.script = p.script[1:]
		call.Status = reply.HTTPStatus
		if reply.RetryAfter != "" {
			w.Header().Set("Retry-After", reply.RetryAfter)
		}
		body := map[string]any{"status": http.StatusText(reply.HTTPStatus), "message": "scripted"}
		if reply.HTTPStatus == http.StatusBadRequest {
			body = map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": []string{"scripted refusal"}}
		}
		writePD(w, reply.HTTPStatus, body)
		return
	}
	if len(errs) > 0 {
		call.Status, call.Errors = http.StatusBadRequest, errs
		writePD(w, http.StatusBadRequest, map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": errs})
		return
	}
	key := call.DedupKey
	if key == "" {
		key = fmt.Sprintf("%032x", len(p.alerts)+1) // PagerDuty makes one up for a trigger without
	}
	p.apply(key, call)
	call.Status = http.StatusAccepted
	writePD(w, http.StatusAccepted, map[string]any{"status": "success", "message": "Event processed", "dedup_key": key})
}

// check validates an event as PagerDuty does.
func (p *PagerDuty) check(c PagerDutyCall, ev pdEvent, pl pdPayload) []string {
	var errs []string
	// PagerDuty's own texts (as its 400s show them).
	switch {
	case ev.RoutingKey == nil || c.RoutingKey == "":
		errs = append(errs, "'routing_key' is missing or blank")
	case utf8.RuneCountInString(c.RoutingKey) != 32:
		errs = append(errs, "Length of 'routing_key' is incorrect (should be 32 characters)")
	case !pdKey.MatchString(c.RoutingKey):
		errs = append(errs, "'routing_key' cannot contain non-alphanumeric characters.")
	case c.RoutingKey != p.RoutingKey:
		errs = append(errs, "Invalid routing key")
	}
	if utf8.RuneCountInString(c.DedupKey) > 255 {
		errs = append(errs, "'dedup_key' must be at most 255 characters")
	}
	switch c.Action {
	case "trigger":
		if ev.Payload == nil {
			return append(errs, "'payload' is missing or blank")
		}
		for _, f := range []struct{ name, v string }{{"summary", pl.Summary}, {"source", pl.Source}, {"severity", pl.Severity}} {
			if f.v == "" {
				errs = append(errs, "'payload."+f.name+"' is missing or blank")
			}
		}
		if utf8.RuneCountInString(pl.Summary) > 1024 {
			errs = append(errs, "'payload.summary' must be at most 1024 characters")
		}
		switch pl.Severity {
		case "critical", "error", "warning", "info", "":
		default:
			errs = append(errs, "'payload.severity' is invalid (must be one of: critical, error, warning, info)")
		}
		if pl.Timestamp != nil && !pdTimestamp.MatchString(*pl.Timestamp) {
			errs = append(errs, "'payload.timestamp' is not ISO 8601")
		}
	case "acknowledge", "resolve":
		if c.DedupKey == "" {
			errs = append(errs, "'dedup_key' is required for "+c.Action+" events")
		}
	default:
		errs = append(errs, "'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
	}
	return errs
}

// apply changes the alert of key as PagerDuty does: a trigger opens it (or
// updates the open one: severity, summary), acknowledge and resolve change
// an open alert and are ignored otherwise.
func (p *PagerDuty) apply(key string, c PagerDutyCall) {
	a := p.alerts[key]
	switch c.Action {
	case "trigger":
		if a == nil || a.Status == "resolved" {
			a = &PagerDutyAlert{Status: "triggered"}
			p.alerts[key] = a
		}
		a.Severity, a.Summary = c.Severity, c.Summary
	case "acknowledge":
		if a != nil && a.Status == "triggered" {
			a.Status = "acknowledged"
		}
	case "resolve":
		if a != nil {
			a.Status = "resolved"
		}
	}
	if a != nil {
		a.Events++
	}
}

func (p *PagerDuty) record(c *PagerDutyCall) {
	p.calls = append(p.calls, *c)
	close(p.notify)
	p.notify = make(chan struct{})
}

func writePD(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(mustJSON(v))))
	w.WriteHeader(status)
	_, _ = w.Write(mustJSON(v))
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
