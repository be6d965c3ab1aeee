package event_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhq/herald/pkg/event"
)

func TestHeaderValuesArePercentEncodedAsTheBindingRequires(t *testing.T) {
	tests := []struct{ in, want string }{
		{"billing", "billing"},
		{`billing team ☃ "x"`, "billing%20team%20%E2%98%83%20%22x%22"},
		{"100%", "100%25"},
		{"tab\there", "tab%09here"},
		{"https://shop.example.com/a?b=c#d", "https://shop.example.com/a?b=c#d"},
	}
	for _, tc := range tests {
		got := event.EncodeHeaderValue(tc.in)
		if got != tc.want {
			t.Errorf("encode %q = %q, want %q", tc.in, got, tc.want)
		}
		back, err := event.DecodeHeaderValue(got)
		if err != nil || back != tc.in {
			t.Errorf("decode %q = %q, %v; want %q", got, back, err, tc.in)
		}
	}
	for _, bad := range []string{"50%", "%zz", "%4"} {
		if _, err := event.DecodeHeaderValue(bad); err == nil {
			t.Errorf("decode %q: want an error", bad)
		}
	}
}

func TestTheEnvelopeRoundTripsThroughNATSHeaders(t *testing.T) {
	e := event.New(`billing team ☃ "x"`, event.IntegrationCallCompleted{Integration: "stripe", Operation: "x", StatusCode: 200},
		event.WithRequestID("order 42/é"), event.WithTime(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)))
	h := e.Header()
	if h.Get("Content-Type") != "" || h.Get(event.HeaderDataContentType) != "application/json" {
		t.Errorf("content type headers: %v", h)
	}
	if got := h.Get(event.HeaderSource); got != "billing%20team%20%E2%98%83%20%22x%22" {
		t.Errorf("ce-source on the wire: %q", got)
	}
	back, err := event.FromMsg("events.integration_call_completed", h, nil)
	if err != nil {
		t.Fatal(err)
	}
	if back.Source != e.Source || back.RequestID != e.RequestID || back.ID != e.ID || !back.Time.Equal(e.Time) {
		t.Errorf("read back %+v, want %+v", back, e)
	}
}

func TestHeaderNamesAreMatchedWhateverTheirCase(t *testing.T) {
	// A producer whose client canonicalises header names (Go's
	// net/textproto, many others) sends Ce-Id, Ce-Type …
	h := nats.Header{
		"Ce-Specversion": {"1.0"}, "Ce-Id": {"e-1"}, "Ce-Type": {"integration_call_completed"},
		"Ce-Source": {"billing"}, "CE-TIME": {"2026-12-01T10:00:00Z"}, "ce-RequestID": {"r%201"},
	}
	e, err := event.FromMsg("events.integration_call_completed", h, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "e-1" || e.Type != "integration_call_completed" || e.Source != "billing" || e.RequestID != "r 1" {
		t.Errorf("read %+v", e)
	}
}
