package heraldtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Slack's interactivity as the fake speaks it: the buttons of an actions
// block, and the block_actions request Slack sends to an app's
// interactivity request URL when a user clicks one (a form whose payload
// field is the interaction's JSON, signed with the app's signing secret).

// SlackButton is a button of a message's actions blocks.
type SlackButton struct {
	BlockID, ActionID string
	Text              string
	Value, URL, Style string
}

type blockButton struct {
	Type string `json:"type"`
	Text struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"text"`
	ActionID string `json:"action_id"`
	Value    string `json:"value"`
	URL      string `json:"url"`
	Style    string `json:"style"`
}

// checkActions applies Slack's rules for an actions block of buttons: 1 to
// 25 elements, plain_text labels of at most 75 characters, action ids of
// at most 255, values of at most 2,000, URLs of at most 3,000, a known style.
func checkActions(blockID string, raw json.RawMessage) string {
	var els []blockButton
	if len(blockID) > 255 || json.Unmarshal(raw, &els) != nil || len(els) == 0 || len(els) > 25 {
		return "invalid_blocks"
	}
	for _, e := range els {
		switch {
		case e.Type != "button", e.Text.Type != "plain_text", e.Text.Text == "", len([]rune(e.Text.Text)) > 75,
			len(e.ActionID) > 255, len(e.Value) > 2000, len(e.URL) > 3000,
			e.Style != "" && e.Style != "primary" && e.Style != "danger":
			return "invalid_blocks"
		}
	}
	return ""
}

// Buttons lists the message's buttons, in order.
func (m SlackMessage) Buttons() []SlackButton {
	var blocks []struct {
		Type     string          `json:"type"`
		BlockID  string          `json:"block_id"`
		Elements json.RawMessage `json:"elements"`
	}
	_ = json.Unmarshal(m.Blocks, &blocks)
	var out []SlackButton
	for _, b := range blocks {
		var els []blockButton
		if b.Type != "actions" || json.Unmarshal(b.Elements, &els) != nil {
			continue
		}
		for _, e := range els {
			out = append(out, SlackButton{BlockID: b.BlockID, ActionID: e.ActionID, Text: e.Text.Text, Value: e.Value,
				URL: e.URL, Style: e.Style})
		}
	}
	return out
}

// Message returns one message of a channel by ts (ok false: none).
func (s *Slack) Message(channel, ts string) (SlackMessage, bool) {
	for _, m := range s.Messages(channel) {
		if m.TS == ts {
			return m, true
		}
	}
	return SlackMessage{}, false
}

// Click makes user click the button actionID of a message, as Slack does:
// the block_actions interaction is POSTed to target (the app's
// interactivity request URL), signed with secret now. The button must be
// on the message.
func (s *Slack) Click(t testing.TB, target, secret, channel, ts, user, actionID string) *Response {
	t.Helper()
	payload := s.Interaction(t, channel, ts, user, actionID)
	return SendInteraction(t, target, secret, payload, time.Now())
}

// Interaction is the block_actions payload of user clicking a message's
// button, as Slack writes it.
func (s *Slack) Interaction(t testing.TB, channel, ts, user, actionID string) []byte {
	t.Helper()
	m, ok := s.Message(channel, ts)
	if !ok {
		t.Fatalf("fake slack: no message %s in %s", ts, channel)
	}
	var button *SlackButton
	for _, b := range m.Buttons() {
		if b.ActionID == actionID {
			button = &b
			break
		}
	}
	if button == nil {
		t.Fatalf("fake slack: message %s has no button %q (buttons: %+v)", ts, actionID, m.Buttons())
	}
	s.mu.Lock()
	name := s.channels[channel].name
	actionTS := s.nextTS(time.Now())
	s.mu.Unlock()
	action := map[string]any{"action_id": button.ActionID, "block_id": button.BlockID, "type": "button",
		"text": map[string]any{"type": "plain_text", "text": button.Text, "emoji": true}, "action_ts": actionTS}
	if button.Value != "" {
		action["value"] = button.Value
	}
	if button.URL != "" {
		action["url"] = button.URL
	}
	if button.Style != "" {
		action["style"] = button.Style
	}
	p := map[string]any{
		"type":       "block_actions",
		"user":       map[string]any{"id": user, "username": strings.ToLower(user), "name": strings.ToLower(user), "team_id": "T0HERALD"},
		"api_app_id": "A0HERALD", "token": "legacy-verification-token",
		"container":  map[string]any{"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false},
		"trigger_id": "13345224609.738474920.8088930838d88f008e0",
		"team":       map[string]any{"id": "T0HERALD", "domain": "herald-test"},
		"enterprise": nil, "is_enterprise_install": false,
		"channel": map[string]any{"id": channel, "name": name},
		"message": map[string]any{"type": "message", "subtype": "bot_message", "bot_id": "B0HERALD", "text": m.Text,
			"ts": ts, "blocks": m.Blocks},
		"state":        map[string]any{"values": map[string]any{}},
		"response_url": "https://hooks.slack.com/actions/T0HERALD/1234567890/abcdef",
		"actions":      []any{action},
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// SendInteraction POSTs an interaction payload as Slack does: the form
// payload=<JSON>, with X-Slack-Request-Timestamp at and X-Slack-Signature
// computed with secret ("" sends it unsigned).
func SendInteraction(t testing.TB, target, secret string, payload []byte, at time.Time) *Response {
	t.Helper()
	body := url.Values{"payload": {string(payload)}}.Encode()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	stamp := strconv.FormatInt(at.Unix(), 10)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", stamp)
	if secret != "" {
		mac := hmac.New(sha256.New, []byte(secret))
		fmt.Fprintf(mac, "v0:%s:%s", stamp, body)
		req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	}
	return Send(t, req)
}
