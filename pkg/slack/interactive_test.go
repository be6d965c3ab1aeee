package slack_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"testing"

	"github.com/heraldhq/herald/pkg/slack"
)

func TestBlocksMarshalAsBlockKit(t *testing.T) {
	tests := []struct {
		name  string
		block slack.Block
		want  string
	}{
		{"section", slack.Section("*hi*"), `{"type":"section","text":{"type":"mrkdwn","text":"*hi*"}}`},
		{"context", slack.Context("a"), `{"type":"context","elements":[{"type":"mrkdwn","text":"a"}]}`},
		{"actions", slack.Actions("b1",
			slack.Button{Text: "Acknowledge", ActionID: "ack", Value: "inc-1", Style: "primary"},
			slack.Button{Text: "Open", ActionID: "open", URL: "https://h.example/v1/incidents/inc-1"}),
			`{"type":"actions","block_id":"b1","elements":[` +
				`{"type":"button","text":{"type":"plain_text","text":"Acknowledge"},"action_id":"ack","value":"inc-1","style":"primary"},` +
				`{"type":"button","text":{"type":"plain_text","text":"Open"},"action_id":"open","url":"https://h.example/v1/incidents/inc-1"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.block)
			if err != nil || string(got) != tt.want {
				t.Errorf("got %s (%v)\nwant %s", got, err, tt.want)
			}
		})
	}
}

func TestParseInteraction(t *testing.T) {
	// A block_actions payload as Slack documents it (trimmed).
	payload := `{"type":"block_actions","user":{"id":"U0CA5","username":"ana","team_id":"T3MDE"},
	 "api_app_id":"A0CA5","token":"Shh","container":{"type":"message","message_ts":"1548261231.000200","channel_id":"C0CA5","is_ephemeral":false},
	 "trigger_id":"12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3","team":{"id":"T3MDE","domain":"example"},
	 "channel":{"id":"C0CA5","name":"oncall"},"response_url":"https://hooks.slack.com/actions/T3MDE/548670772641/HGNgR1hCrS",
	 "actions":[{"action_id":"herald_ack","block_id":"herald_incident","text":{"type":"plain_text","text":"Acknowledge"},
	  "value":"inc-1","style":"primary","type":"button","action_ts":"1548426417.840180"}]}`
	in, err := slack.ParseInteraction([]byte(url.Values{"payload": {payload}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if in.Type != "block_actions" || in.User.ID != "U0CA5" || in.Channel.ID != "C0CA5" || in.Container.MessageTS != "1548261231.000200" ||
		len(in.Actions) != 1 || in.Actions[0].ActionID != "herald_ack" || in.Actions[0].Value != "inc-1" {
		t.Errorf("parsed %+v", in)
	}
	for name, body := range map[string]string{"no payload": "text=hi", "not json": "payload=%7Bnope"} {
		if _, err := slack.ParseInteraction([]byte(body)); err == nil || name == "no payload" && !errors.Is(err, slack.ErrNoPayload) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
