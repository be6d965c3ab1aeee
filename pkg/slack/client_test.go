package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/pkg/slack"
)

func TestClientSpeaksTheWebAPIWithABearerToken(t *testing.T) {
	s := heraldtest.StartSlack(t)
	s.AddChannel("C0123", "ops")
	c := slack.NewClient(s.APIURL, s.Token, nil)
	ctx := context.Background()
	a, err := c.PostMessage(ctx, slack.Message{Channel: "#ops", Text: "hello", Blocks: []slack.Block{slack.Section("*hi*")}})
	if err != nil || a.Channel != "C0123" || a.TS == "" {
		t.Fatalf("post: %+v %v", a, err)
	}
	if _, err := c.UpdateMessage(ctx, slack.Message{Channel: a.Channel, TS: a.TS, Text: "edited"}); err != nil {
		t.Fatalf("update: %v", err)
	}
	r, err := c.PostMessage(ctx, slack.Message{Channel: a.Channel, ThreadTS: a.TS, ReplyBroadcast: true, Text: "reply"})
	if err != nil {
		t.Fatal(err)
	}
	calls := s.Calls()
	if len(calls) != 3 || calls[1].TS != a.TS || calls[2].ThreadTS != a.TS || !calls[2].Broadcast || calls[2].TS != r.TS {
		t.Errorf("calls %+v", calls)
	}
	_, err = c.UpdateMessage(ctx, slack.Message{Channel: "#ops", TS: a.TS, Text: "edited"})
	var se *slack.Error
	if !errors.As(err, &se) || se.Code != "channel_not_found" || se.Kind != slack.Permanent {
		t.Errorf("update by name: %v", err)
	}
}

func TestErrorsAreClassified(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		code       string
		kind       slack.Kind
		retryAfter time.Duration
	}{
		{"ok false", 200, nil, `{"ok":false,"error":"channel_not_found"}`, "channel_not_found", slack.Permanent, 0},
		{"invalid auth", 200, nil, `{"ok":false,"error":"invalid_auth"}`, "invalid_auth", slack.Credentials, 0},
		{"token revoked", 200, nil, `{"ok":false,"error":"token_revoked"}`, "token_revoked", slack.Credentials, 0},
		{"account inactive", 200, nil, `{"ok":false,"error":"account_inactive"}`, "account_inactive", slack.Credentials, 0},
		{"not authed", 200, nil, `{"ok":false,"error":"not_authed"}`, "not_authed", slack.Credentials, 0},
		{"msg too long", 200, nil, `{"ok":false,"error":"msg_too_long"}`, "msg_too_long", slack.Permanent, 0},
		{"invalid blocks", 200, nil, `{"ok":false,"error":"invalid_blocks"}`, "invalid_blocks", slack.Permanent, 0},
		{"a code Slack adds later", 200, nil, `{"ok":false,"error":"brand_new_error"}`, "brand_new_error", slack.Permanent, 0},
		{"ok false without a code", 200, nil, `{"ok":false}`, "ok_false", slack.Permanent, 0},
		{"slack's internal error", 200, nil, `{"ok":false,"error":"internal_error"}`, "internal_error", slack.Transient, 0},
		{"429", 429, map[string]string{"Retry-After": "7"}, `{"ok":false,"error":"ratelimited"}`, "ratelimited", slack.RateLimited, 7 * time.Second},
		{"429 without Retry-After", 429, nil, ``, "http_429", slack.RateLimited, time.Second},
		{"503 html", 503, nil, `<html>down</html>`, "http_503", slack.Transient, 0},
		{"200 html", 200, nil, `<html>proxy</html>`, "invalid_response", slack.Transient, 0},
		{"ok without ts", 200, nil, `{"ok":true}`, "invalid_response", slack.Permanent, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer xoxb-1" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
					t.Errorf("headers %v", r.Header)
				}
				var m map[string]any
				if err := json.NewDecoder(r.Body).Decode(&m); err != nil || m["channel"] != "C1" {
					t.Errorf("body %v %v", m, err)
				}
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			_, err := slack.NewClient(srv.URL, "xoxb-1", nil).PostMessage(context.Background(), slack.Message{Channel: "C1", Text: "x"})
			var se *slack.Error
			if !errors.As(err, &se) || se.Code != tt.code || se.Kind != tt.kind || se.RetryAfter != tt.retryAfter {
				t.Errorf("got %#v", err)
			}
		})
	}
	_, err := slack.NewClient("http://127.0.0.1:1/api/", "x", nil).PostMessage(context.Background(), slack.Message{Channel: "C1"})
	if slack.KindOf(err) != slack.Transient {
		t.Errorf("network error: %v", err)
	}
}

func TestIncomingWebhookAnswersOnlyOK(t *testing.T) {
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0123", "ops")
	ctx := context.Background()
	if err := slack.PostWebhook(ctx, nil, s.IncomingWebhookURL("ops"), slack.Message{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	err := slack.PostWebhook(ctx, nil, s.IncomingWebhookURL("gone"), slack.Message{Text: "hi"})
	var se *slack.Error
	if !errors.As(err, &se) || se.Code != "no_service" || se.Kind != slack.Permanent || se.Status != 404 {
		t.Errorf("gone: %#v", err)
	}
	s.Storm("C0123", 1)
	if err := slack.PostWebhook(ctx, nil, s.IncomingWebhookURL("ops"), slack.Message{Text: "hi"}); slack.KindOf(err) != slack.RateLimited {
		t.Errorf("storm: %v", err)
	}
}

func TestSignatureVerification(t *testing.T) {
	const secret = "8f742231b10e8888abcd99yyyzzz85a5"
	body := []byte("token=x&command=%2Fherald&text=incidents")
	now := time.Unix(1_800_000_000, 0)
	header := func(ts int64, sig string) http.Header {
		h := http.Header{}
		h.Set(slack.HeaderTimestamp, itoa(ts))
		h.Set(slack.HeaderSignature, sig)
		return h
	}
	sign := func(ts int64, b []byte) string { return slack.Sign(secret, itoa(ts), b) }
	tests := []struct {
		name string
		h    http.Header
		body []byte
		want error
	}{
		{"good", header(now.Unix()-10, sign(now.Unix()-10, body)), body, nil},
		{"edge of the window", header(now.Unix()-300, sign(now.Unix()-300, body)), body, nil},
		{"body changed", header(now.Unix(), sign(now.Unix(), body)), append([]byte("x"), body...), slack.ErrBadSignature},
		{"other secret", header(now.Unix(), slack.Sign("other", itoa(now.Unix()), body)), body, slack.ErrBadSignature},
		{"stale", header(now.Unix()-301, sign(now.Unix()-301, body)), body, slack.ErrStale},
		{"future", header(now.Unix()+301, sign(now.Unix()+301, body)), body, slack.ErrStale},
		{"unsigned", http.Header{}, body, slack.ErrUnsigned},
	}
	for _, tt := range tests {
		if err := slack.Verify(secret, tt.h, tt.body, now); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	// Slack's documented example.
	if got := slack.Sign(secret, "1531420618", []byte("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")); got != "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503" {
		t.Errorf("Slack's example signs as %s", got)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestHistoryPagesThroughMessagesWithTheirMetadata(t *testing.T) {
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0123", "ops")
	c := slack.NewClient(s.APIURL, s.Token, nil)
	ctx := context.Background()
	var posted []string
	for i := range 5 {
		a, err := c.PostMessage(ctx, slack.Message{Channel: "C0123", Text: "m" + itoa(int64(i)),
			Meta: &slack.Metadata{EventType: "herald_step", EventPayload: map[string]any{"step": "s" + itoa(int64(i))}}})
		if err != nil {
			t.Fatal(err)
		}
		posted = append(posted, a.TS)
	}
	reply, err := c.PostMessage(ctx, slack.Message{Channel: "C0123", ThreadTS: posted[0], Text: "r",
		Meta: &slack.Metadata{EventType: "herald_step", EventPayload: map[string]any{"step": "r"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteMessage(ctx, "C0123", posted[3]); err != nil {
		t.Fatal(err)
	}
	var se *slack.Error
	if err := c.DeleteMessage(ctx, "C0123", posted[3]); !errors.As(err, &se) || se.Code != "message_not_found" {
		t.Errorf("second delete: %v", err)
	}

	var got []string
	q := slack.HistoryQuery{Channel: "C0123", Oldest: posted[0], Limit: 2}
	for pages := 0; ; pages++ {
		p, err := c.History(ctx, q)
		if err != nil || pages > 3 {
			t.Fatalf("page %d: %v", pages, err)
		}
		for _, m := range p.Messages {
			if m.Metadata == nil || m.Metadata.EventType != "herald_step" {
				t.Errorf("message %s without its metadata", m.TS)
			}
			got = append(got, m.Metadata.EventPayload["step"].(string))
		}
		if q.Cursor = p.NextCursor(); q.Cursor == "" {
			break
		}
	}
	// Newest first, after oldest (exclusive), the deleted one and the
	// thread reply left out.
	if strings.Join(got, ",") != "s4,s2,s1" {
		t.Errorf("history: %v", got)
	}
	p, err := c.History(ctx, slack.HistoryQuery{Channel: "C0123", Thread: posted[0]})
	if err != nil || len(p.Messages) != 2 || p.Messages[0].TS != posted[0] || p.Messages[1].TS != reply.TS ||
		p.Messages[1].Metadata.EventPayload["step"] != "r" {
		t.Errorf("replies: %+v %v", p, err)
	}
	if _, err := c.History(ctx, slack.HistoryQuery{Channel: "#ops"}); !errors.As(err, &se) || se.Code != "channel_not_found" {
		t.Errorf("history by name: %v", err)
	}
}
