package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/pkg/incident"
	"github.com/heraldhq/herald/services/herald/app"
)

func TestRulesCheckNamesTheRuleAndField(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, incident.DefaultRulesYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli(t, "", "rules", "check", good)
	if code != exitOK || !strings.Contains(out, "7 rules OK") || !strings.Contains(out, "otp-failure-rate") {
		t.Fatalf("good file: exit %d, %q %q", code, out, errOut)
	}
	bad := filepath.Join(dir, "bad.yaml")
	doc := strings.Replace(string(incident.DefaultRulesYAML()), "groupBy: [app]\n    window: 5m", "groupBy: [application]\n    window: 5m", 1)
	if err := os.WriteFile(bad, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = cli(t, "", "rules", "check", bad)
	if code != exitUsage || !strings.Contains(errOut, `rule otp-failure-rate: groupBy[0]: "application" is not a field of otp_delivery_completed`) {
		t.Errorf("bad file: exit %d, %q", code, errOut)
	}
	if code, _, _ := cli(t, "", "rules", "check", filepath.Join(dir, "missing.yaml")); code != exitUsage {
		t.Errorf("missing file: exit %d", code)
	}
	if code, out, _ := cli(t, "", "rules", "defaults"); code != exitOK || !strings.Contains(out, "provider-no-success") {
		t.Errorf("defaults: exit %d", code)
	}
}

// seedLog publishes, at explicit past times, a provider outage (the
// gateway-timeout case) and an unpaid-subscription 401, then publishes the
// incidents the default rules derive, as the service would.
func seedLog(t *testing.T) (string, string, time.Time) {
	t.Helper()
	srv := heraldtest.StartSecureServer(t).ApplyStreams(t, app.ServiceStreamDefs()...)
	b := srv.As(t, access.ProviderAdapter) // the provider responses are the adapter's
	inc := srv.As(t, access.Incident)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	rules, err := incident.DefaultRules(b.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	var evs []*event.Event
	resp := func(typ event.Data, at time.Duration) {
		evs = append(evs, event.New("adapter", typ, event.WithTime(t0.Add(at)), event.WithRequestID(fmt.Sprintf("r-%d", len(evs)))))
	}
	ok := event.ProviderResponseReceived{App: "shop", Provider: "fast2sms", Route: "dlt", StatusCode: 200, Classification: "ok", Attempt: 1, LatencyMs: 80}
	fail := event.ProviderResponseFailed{App: "shop", Provider: "fast2sms", Route: "dlt", StatusCode: 504, Classification: "transient", Attempt: 1, LatencyMs: 30000}
	unpaid := event.ProviderResponseFailed{App: "shop", Provider: "acme", Route: "q", StatusCode: 401, Classification: "payment_required", Attempt: 1, LatencyMs: 40}
	resp(ok, 0)
	for i := range 50 {
		resp(fail, time.Duration(i+1)*2*time.Minute)
	}
	resp(ok, 2*time.Hour)
	resp(unpaid, 3*time.Hour)
	resp(event.ProviderResponseReceived{App: "shop", Provider: "acme", Route: "q", StatusCode: 200, Classification: "ok", Attempt: 1, LatencyMs: 50}, 3*time.Hour+30*time.Minute)
	if _, err := b.Publish(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	res, err := incident.Backtest(ctx, inc, incident.BacktestOptions{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Incidents) != 2 {
		t.Fatalf("seeded %d incidents, want 2", len(res.Incidents))
	}
	// Publish what the live service would have published.
	e := incident.NewEngine(incident.Options{Catalog: b.Catalog, Rules: rules})
	if err := incident.Read(ctx, inc.JS, incident.ReadOptions{}, func(r *incident.Record, _ incident.Position) error {
		e.Apply(r)
		for _, tr := range e.Drain() {
			if _, err := inc.PublishOnce(ctx, tr); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return srv.ClientURL(), srv.DataDir, t0
}

func TestIncidentsListAndShow(t *testing.T) {
	url, data, _ := seedLog(t)
	code, out, errOut := cli(t, "", "incidents", "list", "--nats", url, "--data-dir", data)
	if code != exitOK || strings.Count(out, "\n") != 2 || !strings.Contains(out, "provider-no-success") || !strings.Contains(out, "provider-payment-required") {
		t.Fatalf("list: exit %d, %q %q", code, out, errOut)
	}
	_, out, _ = cli(t, "", "incidents", "list", "--nats", url, "--data-dir", data, "--rule", "provider-no-success", "--json")
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, `"openedAt":"2026-11-20T09:00:00Z"`) || !strings.Contains(out, `"resolvedAt":"2026-11-20T10:00:00Z"`) {
		t.Fatalf("list --rule --json: %q", out)
	}
	id := strings.Fields(out[strings.Index(out, `"id":"`)+6:])[0]
	id = id[:strings.Index(id, `"`)]
	code, out, _ = cli(t, "", "incidents", "show", "--nats", url, "--data-dir", data, id)
	if code != exitOK || !strings.Contains(out, "incident_opened") || !strings.Contains(out, "incident_resolved") || !strings.Contains(out, "fast2sms") {
		t.Errorf("show: exit %d, %q", code, out)
	}
	if code, _, _ := cli(t, "", "incidents", "show", "--nats", url, "--data-dir", data, "inc-nope00000"); code != exitUsage {
		t.Errorf("show unknown: exit %d", code)
	}
	if code, _, _ := cli(t, "", "incidents", "list", "--nats", url, "--data-dir", data, "--state", "closed"); code != exitUsage {
		t.Errorf("list --state closed: exit %d", code)
	}
}

func TestReplayBackTestsRulesAndDiffsAgainstPublishedIncidents(t *testing.T) {
	url, data, t0 := seedLog(t)
	dir := t.TempDir()
	same := filepath.Join(dir, "same.yaml")
	if err := os.WriteFile(same, incident.DefaultRulesYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	from, to := t0.Format(time.RFC3339), t0.Add(6*time.Hour).Format(time.RFC3339)
	code, out, errOut := cli(t, "", "replay", "--nats", url, "--data-dir", data, "--rules", same, "--from", from, "--to", to)
	if code != exitOK || !strings.Contains(out, "2 same, 0 changed, 0 added, 0 removed") {
		t.Fatalf("same rules: exit %d\n%s\n%s", code, out, errOut)
	}
	// A stricter absence rule (30 min) opens its incident earlier: a new
	// incident (another onset, so another id) and the published one gone.
	stricter := filepath.Join(dir, "stricter.yaml")
	doc := strings.Replace(string(incident.DefaultRulesYAML()), "- {level: P2, after: 1h}", "- {level: P2, after: 30m}", 1)
	if err := os.WriteFile(stricter, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = cli(t, "", "replay", "--nats", url, "--data-dir", data, "--rules", stricter, "--from", from, "--to", to, "--progress=false")
	if code != exitOK || !strings.Contains(out, "1 same, 0 changed, 1 added, 1 removed") || !strings.Contains(out, "opened 2026-11-20T08:30:00Z") {
		t.Errorf("stricter rules: exit %d\n%s", code, out)
	}
	// Without --rules: the rules recorded in the log (none here: nothing).
	code, out, _ = cli(t, "", "replay", "--nats", url, "--data-dir", data, "--progress=false")
	if code != exitOK || !strings.Contains(out, "0 same, 0 changed, 0 added, 2 removed") {
		t.Errorf("log rules: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"replay", "--nats", url, "--data-dir", data, "--projection", "slackk"},
		{"replay", "--nats", url, "--data-dir", data, "--from", "yesterday"},
		{"replay", "--nats", url, "--data-dir", data, "--from", to, "--to", from},
	} {
		if code, _, _ := cli(t, "", args...); code != exitUsage {
			t.Errorf("%v: exit %d", args, code)
		}
	}
}

// TestARulesFileMayOverrideOneDefaultRule: a file that redefines only
// otp-failure-rate, which names provider-payment-required, is checked
// against the merged set as herald serve would use it.
func TestARulesFileMayOverrideOneDefaultRule(t *testing.T) {
	const one = "../../pkg/incident/testdata/override-one-default.yaml"
	code, out, errOut := cli(t, "", "rules", "check", one)
	if code != exitOK || !strings.Contains(out, "1 rules OK, 7 in force with default rules + "+one) {
		t.Fatalf("over the defaults: exit %d, %q %q", code, out, errOut)
	}
	code, _, errOut = cli(t, "", "rules", "check", "--defaults=false", one)
	if code != exitUsage || !strings.Contains(errOut, `no rule named "provider-payment-required"`) {
		t.Fatalf("alone: exit %d, %q", code, errOut)
	}
}

func TestRulesTestExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const stripe = `{at: 0s, type: integration_call_completed, data: {integration: stripe, operation: x, statusCode: 401, latencyMs: 1, classification: payment_required}}`
	pass := write("pass.yaml", `tests:
  - name: opens
    events: [`+stripe+`]
    expect: [{at: 1m, incidents: [{rule: integration-payment-required, group: {integration: stripe}, state: open}]}]
`)
	fail := write("fail.yaml", `tests:
  - name: expects nothing
    events: [`+stripe+`]
    expect: [{at: 1m, incidents: []}]
`)
	bad := write("bad.yaml", `tests:
  - name: x
    evnets: []
`)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"passing", []string{pass}, exitOK, "PASS  " + pass + ": opens"},
		{"the defaults' own", []string{"../../pkg/incident/default_rules.test.yaml"}, exitOK, "PASS"},
		{"failing", []string{pass, fail}, exitFailure, "unexpected incident of integration-payment-required"},
		{"unreadable", []string{bad}, exitUsage, "field evnets not found"},
		{"missing", []string{filepath.Join(dir, "nope.yaml")}, exitUsage, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := cli(t, "", append([]string{"rules", "test"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out+errOut, tc.want) {
				t.Fatalf("exit %d, want %d; %q %q", code, tc.code, out, errOut)
			}
		})
	}
}
