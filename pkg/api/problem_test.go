package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestWriteErrorIsAProblem(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want map[string]any
	}{
		{"api error", Errorf(http.StatusNotFound, "unknown_app", "no app %q", "shop"), map[string]any{
			"type": ProblemBaseURI + "unknown_app", "title": "Unknown app", "status": 404.0, "error": "unknown_app", "detail": `no app "shop"`}},
		{"extra members stay, never over the problem's", &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Detail: "slow down",
			Extra: map[string]any{"retryAfter": 2, "status": "ignored", "type": "ignored"}}, map[string]any{
			"type": ProblemBaseURI + "rate_limited", "title": "App over its send rate", "status": 429.0, "error": "rate_limited",
			"detail": "slow down", "retryAfter": 2.0}},
		{"a code without a title takes the reason phrase", Errorf(http.StatusTeapot, "brewing", "no"), map[string]any{
			"type": ProblemBaseURI + "brewing", "title": "I'm a teapot", "status": 418.0, "error": "brewing", "detail": "no"}},
		{"any other error is an internal 500", errors.New("secret: disk on fire"), map[string]any{
			"type": ProblemBaseURI + "internal", "title": "Internal error", "status": 500.0, "error": "internal",
			"detail": "internal error; see the server log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, tt.err)
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) || rec.Code != int(tt.want["status"].(float64)) {
				t.Errorf("%d %v\nwant %v", rec.Code, got, tt.want)
			}
			var e *Error
			if errors.As(tt.err, &e) {
				// A stored answer (MarshalJSON) replays the same body.
				b, _ := json.Marshal(e)
				var m map[string]any
				_ = json.Unmarshal(b, &m)
				if !reflect.DeepEqual(m, tt.want) {
					t.Errorf("MarshalJSON: %s", b)
				}
			}
		})
	}
}

// docs/api.md lists every problem type with its title.
func TestProblemTypesDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	for code, title := range titles {
		if row := "| `" + code + "` |"; !strings.Contains(string(doc), row) || !strings.Contains(string(doc), " | "+title+" |") {
			t.Errorf("docs/api.md, Problem types: add the row | `%s` | <status> | %s |", code, title)
		}
	}
}
