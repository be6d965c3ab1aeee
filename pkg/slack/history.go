package slack

import (
	"context"
	"net/url"
	"strconv"
)

// HistoryQuery selects messages of a channel (conversations.history) or of
// a thread (conversations.replies, with Thread set to its parent's ts).
type HistoryQuery struct {
	// Channel is the channel's id: these methods do not take a name.
	Channel string
	Thread  string
	// Oldest bounds the messages to those after it (a Slack ts, exclusive).
	Oldest string
	// Limit is the page size (Slack: at most 999, 200 recommended).
	Limit int
	// Cursor is the previous page's NextCursor.
	Cursor string
}

// HistoryMessage is a message as conversations.history and .replies show it.
type HistoryMessage struct {
	Type     string    `json:"type"`
	Subtype  string    `json:"subtype,omitempty"`
	TS       string    `json:"ts"`
	ThreadTS string    `json:"thread_ts,omitempty"`
	Text     string    `json:"text"`
	BotID    string    `json:"bot_id,omitempty"`
	Metadata *Metadata `json:"metadata,omitempty"`
}

// HistoryPage is one page of messages: newest first for a channel, the
// parent then the replies oldest first for a thread.
type HistoryPage struct {
	Messages         []HistoryMessage `json:"messages"`
	HasMore          bool             `json:"has_more"`
	ResponseMetadata struct {
		NextCursor string `json:"next_cursor"`
	} `json:"response_metadata"`
}

// NextCursor is the cursor of the next page, "" after the last.
func (p HistoryPage) NextCursor() string {
	if !p.HasMore {
		return ""
	}
	return p.ResponseMetadata.NextCursor
}

// History reads one page of a channel's messages, or of a thread's when
// q.Thread is set, with their metadata (include_all_metadata). It needs the
// channels:history scope (groups:history for private channels).
func (c *Client) History(ctx context.Context, q HistoryQuery) (HistoryPage, error) {
	method := "conversations.history"
	form := url.Values{"channel": {q.Channel}, "include_all_metadata": {"true"}}
	if q.Thread != "" {
		method = "conversations.replies"
		form.Set("ts", q.Thread)
	}
	if q.Oldest != "" {
		form.Set("oldest", q.Oldest)
	}
	if q.Limit > 0 {
		form.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		form.Set("cursor", q.Cursor)
	}
	var p HistoryPage
	err := c.do(ctx, method, "application/x-www-form-urlencoded", []byte(form.Encode()), &p)
	return p, err
}
