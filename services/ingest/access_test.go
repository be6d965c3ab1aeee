package ingest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/streams"
)

// heraldOwned returns an event of every type that a Herald service
// publishes, with its schema's example as data.
func heraldOwned(t *testing.T) map[event.Type]string {
	t.Helper()
	cat, err := event.NewCatalog()
	if err != nil {
		t.Fatal(err)
	}
	out := map[event.Type]string{}
	for _, d := range cat.Defs() {
		if d.Owner != event.OwnerProducer {
			out[d.Type] = fmt.Sprintf(`{"type":%q,"source":"shop","data":%s}`, d.Type, d.Example)
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d Herald-owned types in the catalog", len(out))
	}
	return out
}

func TestPostEventsRefusesEveryHeraldOwnedTypeWithoutKeys(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithTargets("dispatcher"))
	before := len(heraldtest.Messages(t, a.Bus.JS, streams.Events))
	for typ, body := range heraldOwned(t) {
		t.Run(string(typ), func(t *testing.T) {
			r := a.Do(t, "POST", "/v1/events", body)
			if r.Status != http.StatusForbidden || r.JSON(t)["error"] != "forbidden_event_type" ||
				!strings.Contains(string(r.Body), "integration_call_completed") {
				t.Errorf("%d %s", r.Status, r.Body)
			}
		})
	}
	batch := `[` + validEvent + `,` + heraldOwned(t)["otp_verified"] + `]`
	if r := a.Do(t, "POST", "/v1/events", batch); r.Status != http.StatusForbidden || !strings.Contains(r.JSON(t)["detail"].(string), "event 1") {
		t.Errorf("batch with one Herald-owned type: %d %s", r.Status, r.Body)
	}
	if n := len(heraldtest.Messages(t, a.Bus.JS, streams.Events)) - before; n != 0 {
		t.Errorf("%d events stored from refused requests", n)
	}
}

func TestPostEventsChecksTheKeyAndItsScope(t *testing.T) {
	billing := heraldtest.ProducerKey(t, "billing", nil, []string{"integration_call_completed"})
	otpOnly := heraldtest.ProducerKey(t, "otp-only", []string{"demo"}, nil)
	ops := heraldtest.OperatorKey(t, "ops")
	a := apptest.StartApp(t, apptest.WithTargets("dispatcher"),
		apptest.WithConfig(heraldtest.KeysYAML(t, billing, otpOnly, ops)))
	before := len(heraldtest.Messages(t, a.Bus.JS, streams.Events))
	tests := []struct {
		name   string
		header []string
		status int
		code   string
	}{
		{"no key", nil, 401, "missing_credentials"},
		{"not a bearer", []string{"Authorization", "Basic " + billing.Secret}, 401, "missing_credentials"},
		{"unknown key", []string{"Authorization", "Bearer hrld_not-a-key"}, 401, "invalid_credentials"},
		{"key scoped to other types", otpOnly.Bearer(), 403, "forbidden"},
		{"operator key", ops.Bearer(), 403, "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.Do(t, "POST", "/v1/events", validEvent, tt.header...)
			if r.Status != tt.status || r.JSON(t)["error"] != tt.code {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tt.status, tt.code)
			}
			if tt.status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %q", r.Header.Get("WWW-Authenticate"))
			}
		})
	}
	for typ, body := range heraldOwned(t) {
		if r := a.Do(t, "POST", "/v1/events", body, billing.Bearer()...); r.Status != http.StatusForbidden {
			t.Errorf("%s with a producer key: %d %s", typ, r.Status, r.Body)
		}
	}
	if n := len(heraldtest.Messages(t, a.Bus.JS, streams.Events)) - before; n != 0 {
		t.Errorf("%d events stored from refused requests", n)
	}
	if r := a.Do(t, "POST", "/v1/events", validEvent, billing.Bearer()...); r.Status != http.StatusAccepted {
		t.Errorf("the right key: %d %s", r.Status, r.Body)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/platform/otp", "/v1/event-types", "/v1/event-types/integration_call_completed"} {
		if r := a.Do(t, "GET", path, nil); r.Status != http.StatusOK {
			t.Errorf("GET %s without a key: %d %s", path, r.Status, r.Body)
		}
	}
}
