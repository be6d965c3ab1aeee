package ingest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/streams"
)

const validEvent = `{"type":"integration_call_completed","source":"billing","requestid":"req-1",
 "data":{"integration":"stripe","operation":"charges.create","statusCode":401,"latencyMs":120.5,"classification":"payment_required"}}`

func TestPostEventsAcceptsOneEventAndStoresItWithItsEnvelope(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithTargets("dispatcher"))
	r := a.Do(t, "POST", "/v1/events", validEvent)
	if r.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	acks := r.JSON(t)["events"].([]any)
	ack := acks[0].(map[string]any)
	if ack["stream"] != streams.Events || ack["seq"].(float64) < 1 || ack["type"] != "integration_call_completed" {
		t.Errorf("ack %v", ack)
	}
	got := heraldtest.Events(t, a.Bus, streams.Events, "events.integration_call_completed")
	if len(got) != 1 {
		t.Fatalf("%d events stored", len(got))
	}
	e := got[0]
	if e.ID != ack["id"] || e.Source != "billing" || e.RequestID != "req-1" || e.DataSchema == "" {
		t.Errorf("envelope %+v", e)
	}
	d, ok := event.As[event.IntegrationCallCompleted](e)
	if !ok || d.Integration != "stripe" || d.StatusCode != 401 || d.Classification != "payment_required" {
		t.Errorf("data %+v", e.Data)
	}
}

// call is an integration_call_completed event with the given envelope
// fields (a JSON fragment) and data.
func call(envelope, data string) string {
	if envelope != "" {
		envelope += ","
	}
	return `{` + envelope + `"type":"integration_call_completed","data":` + data + `}`
}

const callData = `{"integration":"stripe","operation":"charges.create","statusCode":200,"latencyMs":1}`

func TestPostEventsAcceptsABatchAndDeduplicatesByID(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithTargets("dispatcher"))
	batch := `[` + call(`"id":"evt-1","source":"shop"`, callData) + `,` + call(`"id":"evt-2","source":"shop"`, callData) + `]`
	if r := a.Do(t, "POST", "/v1/events", batch); r.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	r := a.Do(t, "POST", "/v1/events", batch)
	if r.Status != http.StatusAccepted {
		t.Fatalf("retry: status %d: %s", r.Status, r.Body)
	}
	for _, ack := range r.JSON(t)["events"].([]any) {
		if ack.(map[string]any)["duplicate"] != true {
			t.Errorf("retry not flagged duplicate: %v", ack)
		}
	}
	if n := len(heraldtest.Events(t, a.Bus, streams.Events, "events.integration_call_completed")); n != 2 {
		t.Fatalf("%d events stored, want 2", n)
	}
}

func TestPostEventsRejectsBadInputWithAClear4xx(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithTargets("dispatcher"))
	before := len(heraldtest.Messages(t, a.Bus.JS, streams.Events)) // the dispatcher's start-up status
	tests := []struct {
		name, body, ctype string
		status            int
		code              string
		detail            string
	}{
		{"invalid JSON", `{"type":`, "", 400, "invalid_json", "unexpected EOF"},
		{"unknown type", `{"type":"otp_teleported","source":"x","data":{}}`, "", 400, "unknown_event_type", "otp_teleported"},
		{"schema violation", call(`"source":"x"`, `{"integration":"stripe","operation":"op","statusCode":1000,"latencyMs":1}`), "", 400, "schema_violation", "/statusCode"},
		{"missing field", call(`"source":"x"`, `{"integration":"stripe","operation":"op","statusCode":200}`), "", 400, "schema_violation", "latencyMs"},
		{"unknown data field", call(`"source":"x"`, `{"integration":"stripe","operation":"op","statusCode":200,"latencyMs":1,"code":"123456"}`), "", 400, "schema_violation", "code"},
		{"unknown envelope field", call(`"source":"x","reqid":"r"`, callData), "", 400, "invalid_json", "reqid"},
		{"no source", call(``, callData), "", 400, "invalid_envelope", "source"},
		{"blank source", call(`"source":"  "`, callData), "", 400, "invalid_envelope", "source"},
		{"source not a URI reference", call(`"source":"billing service"`, callData), "", 400, "invalid_envelope", "URI reference"},
		{"source with a bad escape", call(`"source":"billing%zz"`, callData), "", 400, "invalid_envelope", "percent-encoding"},
		{"no data", `{"type":"integration_call_completed","source":"x"}`, "", 400, "invalid_envelope", "data"},
		{"bad id", call(`"id":"has space","source":"x"`, callData), "", 400, "invalid_envelope", "id"},
		{"wrong schema version", call(`"source":"x","dataschema":"https://herald.dev/schemas/integration_call_completed.v9.json"`, callData), "", 400, "invalid_envelope", "v9"},
		{"batch names the index", `[` + validEvent + `,` + call(`"source":"x"`, `{"integration":"stripe"}`) + `]`, "", 400, "schema_violation", "event 1"},
		{"empty body", ``, "", 400, "empty_body", "empty"},
		{"empty batch", `[]`, "", 400, "empty_batch", "no events"},
		{"not JSON content type", validEvent, "text/plain", 415, "unsupported_media_type", "text/plain"},
		{"oversize body", call(`"source":"`+strings.Repeat("x", 2<<20)+`"`, callData), "", 413, "body_too_large", "bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.ctype != "" {
				hdr = []string{"Content-Type", tt.ctype}
			}
			r := a.Do(t, "POST", "/v1/events", tt.body, hdr...)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			j := r.JSON(t)
			if j["error"] != tt.code || !strings.Contains(fmt.Sprint(j["detail"]), tt.detail) {
				t.Errorf("answer %s, want error %q mentioning %q", r.Body, tt.code, tt.detail)
			}
		})
	}
	if n := len(heraldtest.Messages(t, a.Bus.JS, streams.Events)) - before; n != 0 {
		t.Errorf("%d events stored from rejected requests", n)
	}
}

func TestUnknownRoutesAndMethodsAnswerJSON(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithTargets("dispatcher"))
	if r := a.Do(t, "GET", "/v1/nope", nil); r.Status != 404 || r.JSON(t)["error"] != "not_found" {
		t.Errorf("404: %d %s", r.Status, r.Body)
	}
	if r := a.Do(t, "DELETE", "/v1/events", nil); r.Status != 405 || r.JSON(t)["error"] != "method_not_allowed" || r.Header.Get("Allow") == "" {
		t.Errorf("405: %d %s %v", r.Status, r.Body, r.Header)
	}
}

func TestEventTypesAreListedWithTheirSchemas(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithTargets("dispatcher"))
	r := a.Do(t, "GET", "/v1/event-types", nil)
	types := r.JSON(t)["types"].([]any)
	if len(types) < 21 {
		t.Fatalf("%d types", len(types))
	}
	s := a.Do(t, "GET", "/v1/event-types/otp_generated", nil)
	if s.Status != 200 || !strings.Contains(string(s.Body), `"$id": "https://herald.dev/schemas/otp_generated.v1.json"`) {
		t.Errorf("schema: %d %s", s.Status, s.Body)
	}
	if r := a.Do(t, "GET", "/v1/event-types/nope", nil); r.Status != 404 {
		t.Errorf("unknown type: %d", r.Status)
	}
}

func TestPostEventsAnswers503WithTheIDsWhenTheLogIsDown(t *testing.T) {
	srv := heraldtest.StartSecureServer(t)
	a := apptest.StartApp(t, apptest.WithTargets("dispatcher"), apptest.WithNATS(srv.ClientURL()),
		apptest.WithNATSCredsDir(srv.CredsDir))
	srv.Shutdown()
	srv.WaitForShutdown()
	r := a.Do(t, "POST", "/v1/events", validEvent)
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	j := r.JSON(t)
	if j["error"] != "unavailable" || len(j["ids"].([]any)) != 1 {
		t.Errorf("answer %s", r.Body)
	}
	if r := a.Do(t, "GET", "/readyz", nil); r.Status != http.StatusServiceUnavailable {
		t.Errorf("readyz while the log is down: %d %s", r.Status, r.Body)
	}
	// Stopping does not hang on the missing server, and says what it could not do.
	start := time.Now()
	if err := a.StopErr(); err == nil || !strings.Contains(err.Error(), "without draining") {
		t.Errorf("stop with the log down: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stop took %s", d)
	}
}
