// Package slack speaks the parts of Slack's wire formats that Herald uses:
// the Web API's chat.postMessage (with message metadata), chat.update and
// chat.delete (JSON bodies, bot token as a Bearer header),
// conversations.history and conversations.replies (form bodies, cursor
// pagination, include_all_metadata), incoming webhooks, Block Kit with Slack's size limits, and
// the v0 request signatures of slash commands.
//
// Every failure is reported as an *Error whose Kind says whether to wait for
// Retry-After (HTTP 429), retry with backoff (5xx, network, Slack's own
// transient codes), wait for an operator to fix the workspace's credentials
// (invalid_auth, token_revoked, …: retried too), or give the message up (any
// other "ok":false code, such as channel_not_found or invalid_blocks). Slack
// answers most errors with HTTP 200 and "ok":false, and those are errors
// too. The table is codeKinds in error.go.
package slack
