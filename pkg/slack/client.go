package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// DefaultAPIURL is Slack's Web API base URL.
const DefaultAPIURL = "https://slack.com/api/"

// maxAnswer bounds how much of an answer is read.
const maxAnswer = 1 << 20

// Client calls Slack's Web API with a bot token.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client for the Web API at baseURL (DefaultAPIURL, or a
// fake's URL in tests). hc may be nil for a client with a 10s timeout.
func NewClient(baseURL, token string, hc *http.Client) *Client {
	if baseURL == "" {
		baseURL = DefaultAPIURL
	}
	if !strings.HasSuffix(baseURL, "/") {
		baseURL += "/"
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{base: baseURL, token: token, http: hc}
}

// Message is the body of chat.postMessage and chat.update.
type Message struct {
	Channel string `json:"channel"`
	// TS identifies the message to edit (chat.update only).
	TS string `json:"ts,omitempty"`
	// ThreadTS makes the message a reply in the thread of that message.
	ThreadTS string `json:"thread_ts,omitempty"`
	// ReplyBroadcast also shows a thread reply in the channel.
	ReplyBroadcast bool `json:"reply_broadcast,omitempty"`
	// Text is the notification and accessibility fallback of the blocks.
	Text   string    `json:"text"`
	Blocks []Block   `json:"blocks,omitempty"`
	Meta   *Metadata `json:"metadata,omitempty"`
	// UnfurlLinks false keeps runbook links from expanding into previews.
	UnfurlLinks *bool `json:"unfurl_links,omitempty"`
}

// Metadata is Slack's message metadata: machine-readable facts attached to
// a message, kept with it in Slack.
type Metadata struct {
	EventType    string         `json:"event_type"`
	EventPayload map[string]any `json:"event_payload"`
}

// Answer is the part of Slack's answer that Herald uses.
type Answer struct {
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	Warning string `json:"warning,omitempty"`
	// Channel is the channel id, also when the request named the channel.
	Channel string `json:"channel,omitempty"`
	TS      string `json:"ts,omitempty"`
}

// PostMessage posts a message (chat.postMessage) and returns its channel id and ts.
func (c *Client) PostMessage(ctx context.Context, m Message) (Answer, error) {
	m.TS = ""
	a, err := c.Call(ctx, "chat.postMessage", m)
	if err == nil && (a.TS == "" || a.Channel == "") {
		return a, &Error{Method: "chat.postMessage", Code: "invalid_response", Status: http.StatusOK, Kind: Permanent,
			Err: fmt.Errorf("ok answer without channel and ts")}
	}
	return a, err
}

// UpdateMessage edits a message in place (chat.update); Channel must be the
// channel's id and TS the message's ts.
func (c *Client) UpdateMessage(ctx context.Context, m Message) (Answer, error) {
	m.ThreadTS, m.ReplyBroadcast, m.UnfurlLinks = "", false, nil
	return c.Call(ctx, "chat.update", m)
}

// DeleteMessage deletes a message the bot posted (chat.delete).
func (c *Client) DeleteMessage(ctx context.Context, channel, ts string) error {
	_, err := c.Call(ctx, "chat.delete", struct {
		Channel string `json:"channel"`
		TS      string `json:"ts"`
	}{channel, ts})
	return err
}

// Call posts body as JSON to a Web API method with the bot token and decodes
// the answer. HTTP 429, any other non-200 status, and a 200 with "ok":false
// are all errors (*Error).
func (c *Client) Call(ctx context.Context, method string, body any) (Answer, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return Answer{}, &Error{Method: method, Code: "invalid_request", Kind: Permanent, Err: err}
	}
	var a Answer
	err = c.do(ctx, method, "application/json; charset=utf-8", b, &a)
	return a, err
}

// do sends one Web API request and decodes a successful answer into out.
func (c *Client) do(ctx context.Context, method, contentType string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+method, bytes.NewReader(body))
	if err != nil {
		return &Error{Method: method, Code: "invalid_request", Kind: Permanent, Err: err}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return &Error{Method: method, Code: "network", Kind: Transient, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return &Error{Method: method, Code: "network", Status: resp.StatusCode, Kind: Transient, Err: err}
	}
	var a Answer
	jsonErr := json.Unmarshal(raw, &a)
	switch {
	case jsonErr == nil && !a.OK:
		code := a.Error
		if code == "" {
			code = "ok_false"
		}
		if p, ok := out.(*Answer); ok {
			*p = a
		}
		return codeError(method, code, resp.StatusCode, resp.Header)
	case resp.StatusCode != http.StatusOK:
		return httpError(method, resp.StatusCode, resp.Header, "")
	case jsonErr != nil:
		// A 200 that is not Slack's JSON (a proxy's page): try again later.
		return &Error{Method: method, Code: "invalid_response", Status: resp.StatusCode, Kind: Transient, Err: jsonErr}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &Error{Method: method, Code: "invalid_response", Status: resp.StatusCode, Kind: Transient, Err: err}
	}
	return nil
}

// PostWebhook posts a message to an incoming webhook. Incoming webhooks
// answer "ok" and nothing else: no channel id, no ts, so a message posted
// this way can be neither edited nor replied to.
func PostWebhook(ctx context.Context, hc *http.Client, url string, m Message) error {
	body := struct {
		Text   string  `json:"text"`
		Blocks []Block `json:"blocks,omitempty"`
	}{m.Text, m.Blocks}
	status, h, answer, err := PostJSON(ctx, hc, url, body, nil)
	if err != nil {
		return &Error{Method: "webhook", Code: "network", Kind: Transient, Err: err}
	}
	if status == http.StatusOK {
		return nil
	}
	return httpError("webhook", status, h, answer)
}

// PostJSON posts v as JSON with extra headers and returns the status,
// headers and (the start of) the answer.
func PostJSON(ctx context.Context, hc *http.Client, url string, v any, header map[string]string) (int, http.Header, string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, nil, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return 0, nil, "", err
	}
	return resp.StatusCode, resp.Header, string(answer), nil
}
