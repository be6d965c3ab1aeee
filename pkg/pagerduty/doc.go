// Package pagerduty speaks PagerDuty's Events API v2: one POST of a JSON
// event to https://events.pagerduty.com/v2/enqueue, whose event_action is
// trigger (open an alert, or update the open one with the same dedup_key),
// acknowledge or resolve. PagerDuty answers 202 with the dedup_key it filed
// the event under, 400 for an event it will never accept, 429 when the
// integration's rate limit is passed, 5xx when it failed.
//
// Every failure is an *Error whose Kind says what to do: wait and retry
// (429: rate limited), retry with backoff (5xx, 408, network errors, an
// answer that is not PagerDuty's JSON), or give the event up (400 and any
// other 4xx: the same event will be refused again).
package pagerduty
