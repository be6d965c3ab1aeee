package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/services/herald/app/apptest"
)

// outageConfig is the demo app (the simulator, nothing configured) with the
// runbook's failure-rate rule shrunk to seconds, so that an outage opens,
// escalates and resolves within the test.
const outageConfig = `
otp:
  defaults: {resendCooldown: 0s, perPhone: {count: 0}, perApp: {rate: 0}}
incident:
  tickInterval: 20ms
  rules:
    - name: otp-failure-rate
      kind: ratio
      summary: "{app}: {ratio}% of OTP sends failing ({failed}/{total} in {window})"
      match: {types: [otp_delivery_completed]}
      failed: {where: ["status = failed"]}
      groupBy: [app]
      window: 10s
      resolution: 1s
      minVolume: 4
      severities:
        - {level: P1, above: 0.5, for: 1s}
        - {level: P2, atLeast: 0.3}
        - {level: P3, above: 0}
      resolve: {for: 1s}
`

// browser starts headless Chromium (Debian's chromium package, never a
// downloaded one). Without it the test is skipped, except in CI, where
// .ci/run installs it and its absence is a failure.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not on PATH; .ci/run installs it (apt-get install -y chromium)")
		}
		t.Skip("chromium is not on PATH: apt-get install -y chromium to run the console's browser test")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1400, 1000), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser, for as long as ctx lives: no
	// timeout on it (each step below has its own).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// shots saves screenshots under testdata/screenshots (git-ignored),
// described in docs/console.md.
type shots struct {
	t   *testing.T
	ctx context.Context
	dir string
}

func (s shots) take(name string) {
	s.t.Helper()
	buf, err := chromedp.Run(s.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, name+".png"), buf, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// waitFor waits until the page has an element matching sel (event-driven:
// chromedp polls the DOM until it appears or the step times out).
func waitFor(t *testing.T, ctx context.Context, what, sel string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main"))) // what the page showed, for the failure
		t.Fatalf("%s: %s did not appear: %v\npage:\n%s", what, sel, err, text)
	}
}

func attr(t *testing.T, ctx context.Context, sel, name string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil || !v.Exists {
		t.Fatalf("%s[%s]: %v", sel, name, err)
	}
	return v.Value
}

func send(t *testing.T, a *apptest.App, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		r := a.Do(t, "POST", "/v1/otp/send", map[string]string{"app": "demo", "phone": fmt.Sprintf("+9198765%05d", time.Now().UnixNano()%100000+int64(i))})
		if r.Status != http.StatusOK {
			t.Fatalf("send: %d %s", r.Status, r.Body)
		}
		var ans struct {
			RequestID string `json:"requestId"`
		}
		if err := json.Unmarshal(r.Body, &ans); err != nil || ans.RequestID == "" {
			t.Fatalf("send answer %s: %v", r.Body, err)
		}
		ids = append(ids, ans.RequestID)
	}
	return ids
}

// traffic sends an OTP to the demo app every 200 ms until the test ends,
// so that the failure-rate rule always has volume.
func traffic(t *testing.T, a *apptest.App) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			body := fmt.Sprintf(`{"app":"demo","phone":"+9198770%05d"}`, i%100000)
			req, _ := http.NewRequestWithContext(ctx, "POST", a.URL+"/v1/otp/send", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if r, err := http.DefaultClient.Do(req); err == nil {
				r.Body.Close()
			}
		}
	}()
}

// fail publishes n failed deliveries of the demo app, as the provider
// adapter does when the simulated provider answers 503.
func fail(t *testing.T, a *apptest.App, n int) {
	t.Helper()
	for range n {
		a.Publish(t,
			event.New("herald/provider-adapter", event.ProviderResponseFailed{App: "demo", Provider: "sim", Route: "dlt",
				StatusCode: 503, Classification: "transient", Attempt: 1, LatencyMs: 900, Error: "simulated outage"}),
			event.New("herald/provider-adapter", event.OTPDeliveryCompleted{App: "demo", Status: "failed", DeliveryMode: "dlt", Provider: "sim",
				Attempts: 1, LatencyMs: 950, Reason: "transient", Classification: "transient"}))
	}
}

// TestConsoleShowsAnOutage drives a simulated provider outage through the
// whole platform and watches it in the console, in headless Chromium: the
// incident opens, escalates and resolves, the health chart moves, the live
// tail shows one request's chain, and its trace page.
func TestConsoleShowsAnOutage(t *testing.T) {
	ctx := browser(t)
	dir := filepath.Join("testdata", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := shots{t, ctx, dir}
	a := apptest.StartApp(t, apptest.WithConfig(outageConfig))

	ids := send(t, a, 4)
	traffic(t, a)
	if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+"/")); err != nil {
		t.Fatal(err)
	}
	// Charts over the last minute: one bar a second.
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(`#health-window`), "1m"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('health-window').dispatchEvent(new Event('change'))`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the demo app's health", `[data-health="app:demo"]:not([data-delivered="0"])`)
	waitFor(t, ctx, "no incident yet", `[data-empty="incidents"]`)
	shot.take("1-healthy")

	// The simulated provider starts failing: 1 of about 25 is a P3.
	fail(t, a, 1)
	waitFor(t, ctx, "the incident opening", `tr[data-state="open"][data-severity="P3"]`)
	id := attr(t, ctx, `tr[data-state="open"]`, "data-incident")
	shot.take("2-opened")

	// Most sends fail: P2 at once, P1 after a second above 50 %.
	fail(t, a, 60)
	waitFor(t, ctx, "the incident escalating", `tr[data-incident="`+id+`"][data-severity="P1"]`)
	waitFor(t, ctx, "the health chart moving", `[data-health="app:demo"]:not([data-failed="0"]) rect.bar-bad`)
	waitFor(t, ctx, "the provider's failures", `[data-health="route:sim dlt"]:not([data-failed="0"]) rect.bar-bad`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tr[data-incident="`+id+`"]`))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the timeline", `tr[data-detail="`+id+`"] li[data-transition="incident_escalated"]`)
	shot.take("3-escalated")

	// The provider recovers: the failures leave the 10 s window, the
	// incident resolves.
	waitFor(t, ctx, "the incident resolving", `tr[data-incident="`+id+`"][data-state="resolved"]`)
	waitFor(t, ctx, "the resolution in the timeline", `tr[data-detail="`+id+`"] li[data-transition="incident_resolved"]`)
	waitFor(t, ctx, "the opening in the timeline", `tr[data-detail="`+id+`"] li[data-transition="incident_opened"]`)
	shot.take("4-resolved")

	// One request's chain in the live tail, filtered by its id.
	req := ids[0]
	if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+"/#tail"),
		chromedp.WaitVisible(chromedp.CSS(`#tail-form`)),
		chromedp.SetValue(chromedp.CSS(`#tail-request`), req),
		chromedp.Click(chromedp.CSS(`#tail-form button`))); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"otp_generated", "otp_dlt_dispatch", "provider_response_received", "otp_delivery_completed"} {
		waitFor(t, ctx, "the tail's "+typ, `#tail-lines li[data-request="`+req+`"][data-type="`+typ+`"]`)
	}
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#tail-lines li:not([data-request="`+req+`"])').length`))
	if err != nil || n != 0 {
		t.Errorf("the tail filtered by %s shows %d other line(s) (%v)", req, n, err)
	}
	shot.take("5-tail")

	// Its trace: from the tail's link.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#tail-lines li[data-type="otp_generated"] a`))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the trace", `[data-trace="`+req+`"][data-outcome="delivered"] tr[data-step="otp_delivery_completed"]`)
	waitFor(t, ctx, "the trace's first step", `[data-trace="`+req+`"] tr[data-step="otp_generated"]`)
	shot.take("6-trace")

	// The policy table and the rules in force.
	if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+"/#config")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the policy table", `#policy tr[data-app="demo"]`)
	waitFor(t, ctx, "the rules in force", `#rules tr[data-rule="otp-failure-rate"]`)
	shot.take("7-config")

	if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+"/#dlq")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the dead letters (none)", `#deadletters[data-loaded="true"] .empty`)
	t.Logf("screenshots in %s; incident %s, request %s", dir, id, req)
}
