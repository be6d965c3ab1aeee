package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/streams"
)

// TestTheOfficialSDKInteroperatesBothWays: events the official Go SDK
// sends over HTTP, in binary and in structured mode, are accepted, a
// request id with spaces, quotes and non-ASCII kept exactly; the events
// Herald stores decode in the SDK with every attribute intact (the NATS
// binding's headers follow the HTTP binding's rules, and the SDK's HTTP
// message reader reads them). The SDK (v2.16) does not percent-decode
// header values as the binding requires: a value Herald had to encode
// reads back encoded there, which the test decodes before comparing.
func TestTheOfficialSDKInteroperatesBothWays(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithTargets("dispatcher"))
	c, err := cloudevents.NewClientHTTP()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	sent := map[string]cloudevents.Event{}
	for _, mode := range []string{"binary", "structured"} {
		e := cloudevents.NewEvent()
		e.SetID("sdk-" + mode)
		e.SetSource("urn:shop:billing")
		e.SetType("integration_call_completed")
		e.SetTime(at)
		e.SetExtension("requestid", "order 42 ☃ \"x\"")
		if err := e.SetData(cloudevents.ApplicationJSON, map[string]any{
			"integration": "stripe", "operation": "charges.create", "statusCode": 200, "latencyMs": 12.5,
		}); err != nil {
			t.Fatal(err)
		}
		ctx := cloudevents.ContextWithTarget(context.Background(), a.URL+"/v1/events")
		if mode == "structured" {
			ctx = cloudevents.WithEncodingStructured(ctx)
		}
		if res := c.Send(ctx, e); !cloudevents.IsACK(res) {
			t.Fatalf("%s: the SDK's event was refused: %v", mode, res)
		}
		sent[e.ID()] = e
	}

	for _, e := range heraldtest.Events(t, a.Bus, streams.Events, "events.integration_call_completed") {
		if e.RequestID != "order 42 ☃ \"x\"" || e.Source != "urn:shop:billing" {
			t.Errorf("Herald stored %s with request id %q, source %q", e.ID, e.RequestID, e.Source)
		}
	}
	msgs := heraldtest.Messages(t, a.Bus.JS, streams.Events, "events.integration_call_completed")
	if len(msgs) != 2 {
		t.Fatalf("%d events stored, want 2", len(msgs))
	}
	for _, m := range msgs {
		// The NATS message as the SDK's binary-mode reader sees it.
		h := http.Header{}
		for k, vs := range m.Headers() {
			if k == event.HeaderDataContentType {
				k = "Content-Type" // HTTP carries datacontenttype there
			}
			for _, v := range vs {
				h.Add(k, v)
			}
		}
		got, err := binding.ToEvent(context.Background(), cehttp.NewMessage(h, io.NopCloser(bytes.NewReader(m.Data()))))
		if err != nil {
			t.Fatalf("the SDK cannot read a stored event: %v", err)
		}
		want, ok := sent[got.ID()]
		if !ok {
			t.Fatalf("stored id %q was not sent", got.ID())
		}
		if got.Source() != want.Source() || got.Type() != want.Type() || !got.Time().Equal(want.Time()) ||
			got.SpecVersion() != "1.0" || got.DataContentType() != "application/json" ||
			decoded(t, got.Extensions()["requestid"]) != "order 42 ☃ \"x\"" || got.DataSchema() != "https://herald.dev/schemas/integration_call_completed.v1.json" {
			t.Errorf("stored %s reads back as %+v (extensions %v)", want.ID(), got.Context, got.Extensions())
		}
		var wd, gd map[string]any
		_ = json.Unmarshal(want.Data(), &wd)
		if err := json.Unmarshal(got.Data(), &gd); err != nil || gd["statusCode"] != wd["statusCode"] || gd["integration"] != wd["integration"] {
			t.Errorf("data %s, want %s", got.Data(), want.Data())
		}
	}
}

func decoded(t *testing.T, v any) string {
	t.Helper()
	s, _ := v.(string)
	d, err := event.DecodeHeaderValue(s)
	if err != nil {
		t.Errorf("%q: %v", s, err)
	}
	return d
}

func TestBinaryModeRefusesAnAttributeHeraldDoesNotTake(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithTargets("dispatcher"))
	req, err := http.NewRequest("POST", a.URL+"/v1/events", bytes.NewReader([]byte(
		`{"integration":"stripe","operation":"x","statusCode":200,"latencyMs":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": "b-1", "ce-type": "integration_call_completed",
		"ce-source": "billing", "ce-tracing": "x", "Content-Type": "application/json"} {
		req.Header.Set(k, v)
	}
	r := heraldtest.Send(t, req)
	if r.Status != http.StatusBadRequest || !bytes.Contains(r.Body, []byte("tracing is not an attribute")) {
		t.Errorf("unknown attribute: %d %s", r.Status, r.Body)
	}
}
