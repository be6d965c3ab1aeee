package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhq/herald/services/herald/app/apptest"
)

func TestSimulatorCommands(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithTargets("dispatcher", "provider-adapter"))
	for _, c := range []struct {
		args []string
		code int
		out  string // in stdout, or stderr for a failure
	}{
		{[]string{"simulator", "status"}, exitOK, "simulator: ok"},
		{[]string{"simulator", "set", "flaky", "--rate", "0.3", "--classification", "provider_auth"}, exitOK,
			"simulator: flaky  classification=provider_auth  rate=0.3  since "},
		{[]string{"simulator", "status", "--json"}, exitOK, `{"mode":"flaky","classification":"provider_auth","rate":0.3,"since":"`},
		{[]string{"simulator", "set", "slow", "--latency", "250ms"}, exitOK, "simulator: slow  latency=250ms"},
		{[]string{"simulator", "set", "broken"}, exitUsage, `400 invalid_simulator_mode: mode: "broken" is not one of ok, fail, slow, flaky`},
		{[]string{"simulator", "set", "ok", "--rate", "0.5"}, exitUsage, "rate: only flaky has a rate"},
		{[]string{"simulator", "set", "fail", "--classification", "meh"}, exitUsage, `classification: "meh" is not a failure classification`},
		{[]string{"simulator", "status"}, exitOK, "simulator: slow  latency=250ms"},
		{[]string{"simulator", "outbox"}, exitOK, "no messages"},
	} {
		code, out, errOut := cli(t, "", append(c.args, "--url", a.URL)...)
		got := out
		if c.code != exitOK {
			got = errOut
		}
		if code != c.code || !strings.Contains(got, c.out) {
			t.Errorf("%v: exit %d, %q %q; want exit %d and %q", c.args, code, out, errOut, c.code, c.out)
		}
	}
	// A demo send shows in the outbox (demo mode: every message).
	if resp := a.Do(t, "POST", "/v1/otp/send", map[string]string{"app": "demo", "phone": "+919876543210"}); resp.Status != http.StatusOK {
		t.Fatalf("send: %d %s", resp.Status, resp.Body)
	}
	code, out, _ := cli(t, "", "simulator", "outbox", "--url", a.URL)
	if code != exitOK || !strings.Contains(out, "+91******3210") || !strings.Contains(out, "is your Herald demo code") {
		t.Errorf("outbox: exit %d\n%s", code, out)
	}
}

func TestTheSimulatorIsServedOnlyWhereTheAdapterRuns(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithTargets("notifier"))
	if resp := a.Do(t, "GET", "/v1/simulator", nil); resp.Status != http.StatusNotFound {
		t.Errorf("GET /v1/simulator without the adapter: %d %s, want 404", resp.Status, resp.Body)
	}
}
