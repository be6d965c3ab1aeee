package slack

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
)

// Block Kit limits of an actions block and its buttons.
const (
	MaxActionElements = 25
	MaxButtonText     = 75
	MaxActionID       = 255
	MaxButtonValue    = 2000
	MaxButtonURL      = 3000
)

// Button is a Block Kit button element. A button with a URL opens it in
// the reader's browser (Slack still sends an interaction, which is
// acknowledged and otherwise ignored); the others send their ActionID and
// Value to the app's interactivity request URL.
type Button struct {
	Text     string
	ActionID string
	Value    string
	URL      string
	// Style is "primary", "danger" or "" (the default look).
	Style string
}

// MarshalJSON writes the button as Block Kit does.
func (b Button) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Type     string `json:"type"`
		Text     Text   `json:"text"`
		ActionID string `json:"action_id,omitempty"`
		Value    string `json:"value,omitempty"`
		URL      string `json:"url,omitempty"`
		Style    string `json:"style,omitempty"`
	}{"button", Text{Type: "plain_text", Text: Truncate(b.Text, MaxButtonText)}, b.ActionID, b.Value, b.URL, b.Style})
}

// Actions is an actions block of up to 25 buttons.
func Actions(blockID string, buttons ...Button) Block {
	return Block{Type: "actions", BlockID: blockID, Buttons: buttons[:min(len(buttons), MaxActionElements)]}
}

// MarshalJSON writes an actions block's buttons as its elements.
func (b Block) MarshalJSON() ([]byte, error) {
	type plain Block
	if b.Type != "actions" {
		return json.Marshal(plain(b))
	}
	return json.Marshal(struct {
		Type     string   `json:"type"`
		BlockID  string   `json:"block_id,omitempty"`
		Elements []Button `json:"elements"`
	}{b.Type, b.BlockID, b.Buttons})
}

// Interaction is the part of an interaction payload (a block_actions
// request to the interactivity request URL) that Herald uses.
type Interaction struct {
	Type string `json:"type"`
	User struct {
		ID       string `json:"id"`
		Username string `json:"username"`
		TeamID   string `json:"team_id"`
	} `json:"user"`
	Team struct {
		ID string `json:"id"`
	} `json:"team"`
	// Container is where the buttons were: a message's channel and ts.
	Container struct {
		Type      string `json:"type"`
		MessageTS string `json:"message_ts"`
		ChannelID string `json:"channel_id"`
	} `json:"container"`
	Channel struct {
		ID string `json:"id"`
	} `json:"channel"`
	Actions     []Action `json:"actions"`
	ResponseURL string   `json:"response_url"`
}

// Action is one element a user acted on.
type Action struct {
	ActionID string `json:"action_id"`
	BlockID  string `json:"block_id"`
	Type     string `json:"type"`
	Value    string `json:"value"`
	ActionTS string `json:"action_ts"`
}

// ErrNoPayload: the body is not an interaction (no payload field).
var ErrNoPayload = errors.New("the body has no payload field")

// ParseInteraction reads an interaction request's body: a form whose
// payload field is the interaction's JSON. Verify the request first.
func ParseInteraction(body []byte) (Interaction, error) {
	var in Interaction
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return in, fmt.Errorf("the body is not a form: %w", err)
	}
	p := form.Get("payload")
	if p == "" {
		return in, ErrNoPayload
	}
	if err := json.Unmarshal([]byte(p), &in); err != nil {
		return in, fmt.Errorf("the payload is not an interaction: %w", err)
	}
	if in.Channel.ID == "" {
		in.Channel.ID = in.Container.ChannelID
	}
	return in, nil
}
