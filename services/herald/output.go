package main

import "encoding/json"

// printJSON prints v as one line of JSON: every listing's --json form is
// JSON lines, one object per item, for jq and scripts. Subjects keep their
// '>' (no HTML escaping: this is not HTML). Like the human lines, a write
// error (a closed pipe) is not reported.
func printJSON(e *env, v any) {
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
