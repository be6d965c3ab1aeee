package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/heraldhq/herald/pkg/event"
)

var update = flag.Bool("update", false, "rewrite docs/events.md from the schemas")

func catalog(t testing.TB) *event.Catalog {
	t.Helper()
	c, err := event.NewCatalog()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEveryTypeHasAnExampleThatRoundTripsThroughItsStruct(t *testing.T) {
	c := catalog(t)
	for _, d := range c.Defs() {
		t.Run(string(d.Type), func(t *testing.T) {
			if len(d.Example) == 0 {
				t.Fatal("schema has no example")
			}
			e := &event.Event{Type: d.Type, Raw: d.Example}
			if err := c.Decode(e); err != nil {
				t.Fatalf("example does not decode: %v", err)
			}
			if reflect.TypeOf(e.Data) != d.GoType {
				t.Fatalf("decoded %T, want %v", e.Data, d.GoType)
			}
			again, err := json.Marshal(e.Data)
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, again, d.Example) {
				t.Fatalf("struct loses or adds data:\n example %s\n struct  %s", d.Example, again)
			}
		})
	}
}

func TestStructFieldsMatchSchemaProperties(t *testing.T) {
	c := catalog(t)
	for _, d := range c.Defs() {
		t.Run(string(d.Type), func(t *testing.T) {
			tags := jsonFields(d.GoType)
			var props []string
			for _, f := range d.Fields {
				props = append(props, f.Name)
				omit, ok := tags[f.Name]
				if !ok {
					t.Errorf("schema property %q has no struct field", f.Name)
				}
				if f.Required && omit {
					t.Errorf("required property %q is omitempty in the struct", f.Name)
				}
			}
			for name := range tags {
				if !slices.Contains(props, name) {
					t.Errorf("struct field %q is not in the schema", name)
				}
			}
		})
	}
}

func TestSchemaViolationsNameTheField(t *testing.T) {
	c := catalog(t)
	tests := []struct {
		name string
		typ  event.Type
		raw  string
		want []string
	}{
		{"missing required", "otp_revoked", `{"app":"shop"}`, []string{"/", "reason"}},
		{"wrong type", "otp_verified", `{"app":"shop","attempts":"one"}`, []string{"/attempts"}},
		{"unknown field", "otp_revoked", `{"app":"shop","reason":"x","extra":1}`, []string{"extra"}},
		{"enum", "otp_delivery_completed", `{"app":"shop","status":"lost","attempts":1,"latencyMs":1}`, []string{"/status"}},
		{"pattern", "otp_revoked", `{"app":"Shop!","reason":"x"}`, []string{"/app"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Decode(&event.Event{Type: tt.typ, Raw: []byte(tt.raw)})
			var se *event.SchemaError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a SchemaError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(se.Error(), w) {
					t.Errorf("%q does not mention %q", se.Error(), w)
				}
			}
		})
	}
}

func TestDecodeRejectsUnknownTypeAndMalformedJSON(t *testing.T) {
	c := catalog(t)
	if err := c.Decode(&event.Event{Type: "nope", Raw: []byte(`{}`)}); !errors.Is(err, event.ErrUnknownType) {
		t.Errorf("unknown type: got %v", err)
	}
	if err := c.Decode(&event.Event{Type: "otp_revoked", Raw: []byte(`{"app":`)}); !errors.Is(err, event.ErrMalformed) {
		t.Errorf("malformed: got %v", err)
	}
}

func TestEncodeStampsSchemaAndValidates(t *testing.T) {
	c := catalog(t)
	e := event.New("test", event.OTPRevoked{App: "shop", Reason: "delivery_failed"})
	if err := c.Encode(e); err != nil {
		t.Fatal(err)
	}
	if e.DataSchema != "https://herald.dev/schemas/otp_revoked.v1.json" {
		t.Errorf("dataschema %q", e.DataSchema)
	}
	bad := event.New("test", event.OTPRevoked{App: "shop"})
	var se *event.SchemaError
	if err := c.Encode(bad); !errors.As(err, &se) {
		t.Errorf("encoding an invalid struct: got %v, want SchemaError", err)
	}
}

func TestSubjectDefaultsToLogAndType(t *testing.T) {
	c := catalog(t)
	e := event.New("test", event.IncidentOpened{})
	if s, _ := c.Subject(e); s != "incidents.incident_opened" {
		t.Errorf("subject %q", s)
	}
	e.Subject = "events.elsewhere"
	if _, err := c.Subject(e); err == nil {
		t.Error("a subject outside the type's log was accepted")
	}
}

func TestEnvelopeSurvivesHeaders(t *testing.T) {
	cause := event.New("dispatcher", event.OTPVerified{App: "a", Attempts: 1}, event.WithRequestID("req-1"))
	e := event.New("adapter", event.OTPRevoked{App: "a", Reason: "x"}, event.WithCausation(cause))
	got, err := event.FromMsg("events.otp_revoked", e.Header(), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != e.ID || got.Type != e.Type || got.Source != e.Source || !got.Time.Equal(e.Time) ||
		got.RequestID != "req-1" || got.CausationID != cause.ID {
		t.Errorf("envelope changed: %+v vs %+v", got, e)
	}
	if e.Header().Get("Nats-Msg-Id") != e.ID {
		t.Error("Nats-Msg-Id is not the event id")
	}
	h := e.Header()
	delete(h, event.HeaderTime)
	if _, err := event.FromMsg("x", h, nil); !errors.Is(err, event.ErrMalformedEnvelope) {
		t.Errorf("missing time: got %v", err)
	}
}

func TestEventsDocMatchesSchemas(t *testing.T) {
	var b bytes.Buffer
	if err := catalog(t).WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	const path = "../../docs/events.md"
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		t.Fatal("docs/events.md is out of date: run go test ./pkg/event -run TestEventsDoc -update")
	}
}

func jsonFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = strings.Contains(opts, "omitempty")
	}
	return out
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}
