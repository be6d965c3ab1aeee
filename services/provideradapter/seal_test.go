package provideradapter_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/pkg/logging"
	"github.com/heraldhq/herald/pkg/otp"
	"github.com/heraldhq/herald/streams"
)

// publishForged stores a message on the dispatch subjects as a holder of
// publish rights would (raw, so that it may violate the schema), and waits
// until the provider adapter has dealt with it: acknowledged or dead-lettered.
func (r *rig) publishForged(t *testing.T, typ event.Type, requestID string, data any) string {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	e := event.New("attacker", event.OTPRevoked{}, event.WithRequestID(requestID)) // for its envelope only
	e.Type = typ
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The forger holds the rights of the role that owns the type (the
	// dispatcher's for a dispatch, the adapter's own for a fallback): the
	// server lets it publish; only the seal and the plan can refuse it.
	def, err := r.Bus.Catalog.Def(typ)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := r.As(t, access.Role(def.Owner)).JS.PublishMsg(ctx, &nats.Msg{Subject: "events." + string(typ), Header: e.Header(), Data: raw})
	if err != nil {
		t.Fatal(err)
	}
	durable := "provider-adapter"
	if typ == "otp_dlt_fallback" {
		durable = "provider-adapter-fallback"
	}
	c, err := r.As(t, access.ProviderAdapter).JS.Consumer(ctx, streams.Events, durable)
	if err != nil {
		t.Fatal(err)
	}
	heraldtest.Eventually(t, 10*time.Second, "the adapter to take "+e.ID, func() bool {
		info, err := c.Info(ctx)
		return err == nil && info.AckFloor.Stream >= ack.Sequence
	})
	return e.ID
}

// deadLetter is the DLQ entry of a message id ("" when it has none).
func (r *rig) deadLetter(t *testing.T, msgID string) (reason, detail string) {
	t.Helper()
	for _, m := range heraldtest.Messages(t, r.Bus.JS, streams.DLQ) {
		if m.Headers().Get(bus.HeaderDLQMsgID) == msgID {
			return m.Headers().Get(bus.HeaderDLQReason), m.Headers().Get(bus.HeaderDLQError)
		}
	}
	return "", ""
}

// platformEvents are the events of a request that Herald published (not
// the forgeries, valid or not).
func (r *rig) platformEvents(t *testing.T, requestID string) []*event.Event {
	t.Helper()
	var out []*event.Event
	err := r.Bus.ReadAll(context.Background(), streams.Events, nil, func(e *event.Event, err error) error {
		if err == nil && e.RequestID == requestID && e.Source != "attacker" {
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAReadDispatchCannotBeRetargetedReroutedOrReplayedAsAnotherLeg(t *testing.T) {
	r := startRig(t, "")
	victim := "+919753186420"
	resp := r.Do(t, "POST", "/v1/otp/send", map[string]string{"app": "shop", "phone": victim})
	if resp.Status != http.StatusOK {
		t.Fatalf("victim's send: %d %s", resp.Status, resp.Body)
	}
	rid := requestID(t, resp)
	code := r.f2s.Requests()[0].Code()
	seen := r.events(t, rid)
	d := find[event.OTPDLTDispatch](t, seen)
	if d.Phone != logging.MaskPhone(victim) || strings.Contains(d.Sealed, code) || !strings.HasPrefix(d.Sealed, "0.") {
		t.Fatalf("victim's dispatch shows %+v", d)
	}
	keys, err := otp.LoadKeys("", "", r.DataDir) // the platform's own keys
	if err != nil {
		t.Fatal(err)
	}
	attacker := "+919753186499"
	masked := logging.MaskPhone(attacker)
	deadline := time.Now().Add(time.Minute).UTC()
	sealedFor := func(leg int, provider, route string) string {
		return keys.Seal(otp.Binding{RequestID: rid, App: "shop", Leg: leg, Provider: provider, Route: route}, attacker, code)
	}
	fallback := func(leg int, provider, route, sealed string) event.OTPDLTFallback {
		return event.OTPDLTFallback{App: "shop", Phone: masked, Sealed: sealed, Provider: provider, Route: route,
			FromProvider: "fast2sms", FromRoute: "dlt", Reason: "transient_exhausted", DeliveryPolicy: "dlt_with_fallback",
			Deadline: deadline, Leg: leg}
	}
	rerouted := func(provider, route string) event.OTPDLTDispatch {
		x := d
		x.Provider, x.Route, x.TemplateID, x.Phone = provider, route, "", masked
		return x
	}
	fullPhone := map[string]any{"app": "shop", "phone": attacker, "sealed": d.Sealed, "provider": "fast2sms", "route": "q",
		"reason": "transient_exhausted", "deliveryPolicy": "dlt_with_fallback", "deadline": deadline, "leg": 1}
	tests := []struct {
		name      string
		typ       event.Type
		requestID string
		data      any
		// dlq is the dead letter's reason and a word of its error ("" when
		// the message is not dead-lettered: it sends nothing either way).
		dlq, because string
	}{
		{"the victim's seal as the next leg, to the attacker's phone", "otp_dlt_fallback", rid,
			fallback(1, "fast2sms", "q", d.Sealed), "handler", "seal_invalid"},
		{"the victim's seal re-routed to the quick route", "otp_dlt_dispatch", rid, rerouted("fast2sms", "q"), "handler", "seal_invalid"},
		{"the victim's seal re-routed to another provider", "otp_dlt_dispatch", rid, rerouted("twilio", "sms"), "handler", "seal_invalid"},
		{"the victim's seal as a leg outside the plan", "otp_dlt_fallback", rid,
			fallback(7, "twilio", "sms", d.Sealed), "handler", "seal_invalid"},
		{"the victim's dispatch under another request id", "otp_dlt_dispatch", event.NewID(), d, "handler", "seal_invalid"},
		{"a full phone number beside the seal", "otp_dlt_fallback", rid, fullPhone, "schema", "phone"},
		{"a dispatch claiming a later leg", "otp_dlt_dispatch", rid, func() event.OTPDLTDispatch { x := d; x.Leg = 1; return x }(), "schema", "leg"},
		// With the seal key itself, still only the app's plan is sent.
		{"a genuine seal for a leg outside the plan", "otp_dlt_fallback", rid,
			fallback(3, "twilio", "sms", sealedFor(3, "twilio", "sms")), "handler", "leg_not_in_plan"},
		{"a genuine seal for another route at a leg of the plan", "otp_dlt_fallback", rid,
			fallback(1, "twilio", "sms", sealedFor(1, "twilio", "sms")), "handler", "leg_not_in_plan"},
		{"a genuine seal for leg 0 as a fallback", "otp_dlt_fallback", rid,
			fallback(0, "fast2sms", "dlt", sealedFor(0, "fast2sms", "dlt")), "", ""},
		{"the victim's dispatch again under a new message id", "otp_dlt_dispatch", rid, d, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f2s, tw := len(r.f2s.Requests()), len(r.tw.Requests())
			id := r.publishForged(t, tt.typ, tt.requestID, tt.data)
			if n := len(r.f2s.Requests()) - f2s + len(r.tw.Requests()) - tw; n != 0 {
				t.Fatalf("%d SMS sent for a forged leg", n)
			}
			reason, detail := r.deadLetter(t, id)
			if reason != tt.dlq || !strings.Contains(detail, tt.because) {
				t.Errorf("dead letter %q %q, want %q with %q", reason, detail, tt.dlq, tt.because)
			}
			if got := r.platformEvents(t, rid); len(got) != len(seen) {
				t.Errorf("the forged leg recorded events under the victim's request: %s, was %s", types(got), types(seen))
			}
		})
	}
	for _, q := range r.f2s.Requests() {
		if strings.HasSuffix(attacker, q.Numbers) {
			t.Errorf("fast2sms sent to the attacker: %+v", q)
		}
	}
	for _, q := range r.tw.Requests() {
		if q.To == attacker {
			t.Errorf("twilio sent to the attacker: %+v", q)
		}
	}
	b := otp.Binding{RequestID: rid, App: "shop", Leg: 1, Provider: "fast2sms", Route: "q"}
	if _, _, err := keys.Open(b, d.Sealed); err == nil {
		t.Error("the victim's seal opens as leg 1")
	}
	// The forgeries left the victim's code as it was: theirs to verify.
	if v := r.verify(t, rid, code); v.Status != http.StatusOK {
		t.Errorf("victim's verify after the forgeries: %d %s", v.Status, v.Body)
	}
}
