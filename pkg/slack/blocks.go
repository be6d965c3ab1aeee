package slack

import (
	"unicode/utf8"
)

// Slack's Block Kit limits; a message beyond them is refused with invalid_blocks.
const (
	MaxBlocks        = 50
	MaxSectionText   = 3000
	MaxFieldText     = 2000
	MaxFields        = 10
	MaxHeaderText    = 150
	MaxContextItems  = 10
	MaxFallbackText  = 4000 // Slack truncates longer text; it accepts up to 40,000
	ellipsis         = "…"
	ellipsisRuneSize = 1
)

// Block is one Block Kit layout block (header, section, context, divider,
// actions).
type Block struct {
	Type     string `json:"type"`
	BlockID  string `json:"block_id,omitempty"`
	Text     *Text  `json:"text,omitempty"`
	Fields   []Text `json:"fields,omitempty"`
	Elements []Text `json:"elements,omitempty"`
	// Buttons are an actions block's elements (Actions).
	Buttons []Button `json:"-"`
}

// Text is a Block Kit text object: "mrkdwn" or "plain_text".
type Text struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Header is a header block (plain text, at most 150 characters).
func Header(s string) Block {
	return Block{Type: "header", Text: &Text{Type: "plain_text", Text: Truncate(s, MaxHeaderText)}}
}

// Section is a section block of mrkdwn text (at most 3,000 characters).
func Section(md string) Block {
	return Block{Type: "section", Text: &Text{Type: "mrkdwn", Text: Truncate(md, MaxSectionText)}}
}

// Fields is a section block of up to 10 mrkdwn fields (2,000 characters each).
func Fields(md ...string) Block {
	b := Block{Type: "section"}
	for _, f := range md[:min(len(md), MaxFields)] {
		b.Fields = append(b.Fields, Text{Type: "mrkdwn", Text: Truncate(f, MaxFieldText)})
	}
	return b
}

// Context is a context block of up to 10 small mrkdwn elements.
func Context(md ...string) Block {
	b := Block{Type: "context"}
	for _, e := range md[:min(len(md), MaxContextItems)] {
		b.Elements = append(b.Elements, Text{Type: "mrkdwn", Text: Truncate(e, MaxSectionText)})
	}
	return b
}

// Limit keeps at most MaxBlocks blocks, the last one of which says that
// some were left out.
func Limit(blocks []Block) []Block {
	if len(blocks) <= MaxBlocks {
		return blocks
	}
	out := append([]Block(nil), blocks[:MaxBlocks-1]...)
	return append(out, Context("_(more details left out: Slack shows at most 50 blocks)_"))
}

// Truncate cuts s to at most n characters (runes), ending with "…" when cut.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-ellipsisRuneSize]) + ellipsis
}
