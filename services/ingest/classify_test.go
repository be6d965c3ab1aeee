package ingest_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/streams"
)

// readmeStripe401 is the README tour's event, as the tour sends it.
const readmeStripe401 = `{
  "type": "integration_call_completed", "source": "billing", "requestid": "order-42",
  "data": {"integration": "stripe", "operation": "charges.create",
           "statusCode": 401, "latencyMs": 182, "error": "subscription expired"}}`

// TestTheReadmeStripe401OpensThePaymentIncidentAndItsSuccessResolvesIt is
// the seed's case with nothing configured: Herald classifies the producer's
// stripe 401 as payment_required (recording why on the event), the default
// rules open integration-payment-required, and stripe's next success
// resolves it.
func TestTheReadmeStripe401OpensThePaymentIncidentAndItsSuccessResolvesIt(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithTargets("dispatcher", "incident"), apptest.WithConfig("incident:\n  tickInterval: 20ms\n"))
	if r := a.Do(t, "POST", "/v1/events", readmeStripe401); r.Status != http.StatusAccepted {
		t.Fatalf("POST /v1/events: %d %s", r.Status, r.Body)
	}
	stored := heraldtest.Events(t, a.Bus, streams.Events, "events.integration_call_completed")
	if len(stored) != 1 {
		t.Fatalf("%d integration events stored", len(stored))
	}
	var d event.IntegrationCallCompleted
	if err := json.Unmarshal(stored[0].Raw, &d); err != nil {
		t.Fatal(err)
	}
	if d.Classification != "payment_required" || !strings.Contains(d.ClassificationReason, "unpaid") {
		t.Fatalf("stored data: %s", stored[0].Raw)
	}
	opened := waitIncident(t, a, "incident_opened")
	var o event.IncidentOpened
	if err := json.Unmarshal(opened.Raw, &o); err != nil {
		t.Fatal(err)
	}
	if o.Rule != "integration-payment-required" || o.Group["integration"] != "stripe" {
		t.Fatalf("opened: %s", opened.Raw)
	}
	ok := `{"type": "integration_call_completed", "source": "billing",
	  "data": {"integration": "stripe", "operation": "charges.create", "statusCode": 200, "latencyMs": 90}}`
	if r := a.Do(t, "POST", "/v1/events", ok); r.Status != http.StatusAccepted {
		t.Fatalf("POST /v1/events: %d %s", r.Status, r.Body)
	}
	resolved := waitIncident(t, a, "incident_resolved")
	if !strings.Contains(string(resolved.Raw), o.IncidentID) {
		t.Fatalf("resolved another incident: %s", resolved.Raw)
	}
}

func TestAProducersOwnClassificationAndTheConfiguredRulesComeFirst(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithTargets("dispatcher"), apptest.WithConfig(`
integrations:
  classify:
    - {integration: sendgrid, error: "(?i)credits", classification: payment_required, reason: "SendGrid says credits when the plan ran out"}
  defaultClassify: false
`))
	send := func(data string) event.IntegrationCallCompleted {
		t.Helper()
		body := `{"type": "integration_call_completed", "source": "mail", "data": ` + data + `}`
		r := a.Do(t, "POST", "/v1/events", body)
		if r.Status != http.StatusAccepted {
			t.Fatalf("POST /v1/events: %d %s", r.Status, r.Body)
		}
		var ack struct{ Events []struct{ Seq uint64 } }
		if err := json.Unmarshal(r.Body, &ack); err != nil {
			t.Fatal(err)
		}
		all := heraldtest.Events(t, a.Bus, streams.Events, "events.integration_call_completed")
		var d event.IntegrationCallCompleted
		if err := json.Unmarshal(all[len(all)-1].Raw, &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := send(`{"integration": "sendgrid", "operation": "send", "statusCode": 403, "latencyMs": 5, "error": "Out of credits"}`); d.Classification != "payment_required" || d.ClassificationReason == "" {
		t.Errorf("configured rule: %+v", d)
	}
	if d := send(`{"integration": "stripe", "operation": "charges.create", "statusCode": 401, "latencyMs": 5}`); d.Classification != "" {
		t.Errorf("defaults off, yet: %+v", d)
	}
	if d := send(`{"integration": "sendgrid", "operation": "send", "statusCode": 403, "latencyMs": 5, "error": "Out of credits", "classification": "quota"}`); d.Classification != "quota" || d.ClassificationReason != "" {
		t.Errorf("the producer's classification: %+v", d)
	}
}

func TestABadClassificationRuleStopsTheStartNamingIt(t *testing.T) {
	// Built, not started: the configuration is checked before anything runs.
	_, err := app.New(app.Options{DataDir: t.TempDir(), Targets: []string{app.Dispatcher}, ConfigYAML: `
integrations:
  classify:
    - {statusCodes: [401], classification: payment_required}
`, Logger: heraldtest.Logger(t)})
	if err == nil || !strings.Contains(err.Error(), "integrations.classify: rule 0: reason is required") {
		t.Fatalf("err = %v", err)
	}
}

// waitIncident waits for the first INCIDENTS event of a type.
func waitIncident(t *testing.T, a *apptest.App, typ string) *event.Event {
	t.Helper()
	var found *event.Event
	heraldtest.Eventually(t, 15*time.Second, typ, func() bool {
		for _, e := range heraldtest.Events(t, a.Bus, streams.Incidents) {
			if string(e.Type) == typ {
				found = e
				return true
			}
		}
		return false
	})
	return found
}
