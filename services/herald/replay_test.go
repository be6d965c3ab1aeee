package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
)

func TestReplaySlackShowsTheNotifierStateAndPostsNothing(t *testing.T) {
	s := heraldtest.StartSlack(t, heraldtest.WithSlackRate(0, 0))
	s.AddChannel("C0OPS", "ops")
	a := apptest.StartApp(t, apptest.WithTargets("notifier"), apptest.WithConfig(fmt.Sprintf(`
notifier:
  slack: {apiURL: %q, botToken: %q}
  rateLimit: {perSecond: 50, burst: 5}
  routes: [{name: all, channels: [C0OPS]}]
`, s.APIURL, s.Token)))
	ctx := context.Background()
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	group := map[string]string{"app": "shop"}
	ev := event.Evidence{Failed: 5, Total: 10, Ratio: .5, Window: "5m0s"}
	for i, d := range []event.Data{
		event.IncidentOpened{IncidentID: "inc-4e91a10000000001", Rule: "otp-failure-rate", Kind: "ratio", Severity: "P2", Group: group, OpenedAt: at, Summary: "s", Evidence: ev},
		event.IncidentResolved{IncidentID: "inc-4e91a10000000001", Rule: "otp-failure-rate", Group: group, OpenedAt: at, ResolvedAt: at.Add(time.Hour), PeakSeverity: "P2", Evidence: ev},
	} {
		e := event.New("incident", d, event.WithSubject(fmt.Sprintf("incidents.%s.inc-4e91a10000000001.%d", d.EventType(), i)))
		if _, err := a.As(t, access.Incident).PublishOnce(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	heraldtest.Eventually(t, 5*time.Second, "three Slack calls", func() bool { return len(s.AcceptedCalls()) == 3 })
	before := len(s.Calls())

	code, out, errOut := cli(t, "", "replay", "--projection", "slack", "--nats", a.NATSURL, "--data-dir", a.DataDir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"nothing was posted", "incidents: 1 (0 open)", "ledger: 2 posted, 1 updated, 0 failed",
		"deliveries left to do: 0", "inc-4e91a10000000001", "C0OPS", "web_api", "resolved-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = cli(t, "", "replay", "--projection", "slack", "--json", "--nats", a.NATSURL, "--data-dir", a.DataDir)
	var r struct {
		Lanes []struct {
			Destination string `json:"destination"`
			Shows       string `json:"shows"`
			Next        string `json:"next"`
		} `json:"lanes"`
	}
	if err := json.Unmarshal([]byte(out), &r); code != exitOK || err != nil || len(r.Lanes) != 1 || r.Lanes[0].Shows != "resolved-1" || r.Lanes[0].Next != "" {
		t.Errorf("json: exit %d, %v, %s", code, err, out)
	}
	if after := len(s.Calls()); after != before {
		t.Errorf("replay made %d Slack calls", after-before)
	}
	// (Without --projection, replay back-tests incidents: see incidents_test.go.)
	for _, args := range [][]string{{"replay", "--projection", ""}, {"replay", "--projection", "incidents-typo"}} {
		if code, _, errOut := cli(t, "", args...); code != exitUsage || !strings.Contains(errOut, "--projection") {
			t.Errorf("%v: exit %d, %s", args, code, errOut)
		}
	}
	if code, out, _ := cli(t, "", "replay", "--help"); code != exitOK || !strings.Contains(out, "--projection") {
		t.Errorf("help: %d %s", code, out)
	}
}
