// Package slack speaks the parts of Slack's wire formats that Herald uses:
// the Web API's chat.postMessage and chat.update (JSON bodies, bot token as a
// Bearer header), incoming webhooks, Block Kit with Slack's size limits, and
// the v0 request signatures of slash commands.
//
// Every failure is reported as an *Error that says whether to wait for
// Retry-After (HTTP 429), retry with backoff (5xx, network, Slack's own
// transient codes) or give up (any other "ok":false code, such as
// channel_not_found or invalid_auth): Slack answers most errors with HTTP 200
// and "ok":false, and those are errors too.
package slack
