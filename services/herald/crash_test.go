package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/streams"
)

// connectServe connects a test client to a running herald serve, as
// operator-read (the credentials it created under its data dir).
func connectServe(t *testing.T, p *serveProc, dataDir string) *bus.Bus {
	t.Helper()
	return heraldtest.ConnectAs(t, p.nats, bus.CredsDir(dataDir), access.OperatorRead)
}

// Issue 9: SIGKILL of herald serve in the middle of OTP sends, restarted at
// once on the same data dir: every accepted send reaches an outcome event
// (delivered, failed, or failed with outcome_unknown), nothing is
// dead-lettered, no number gets a second SMS, and the crash opens no
// incident.
func TestSIGKILLMidLoadAndRestartEndsEveryAcceptedSend(t *testing.T) {
	f2s := heraldtest.NewFast2SMS(t)
	t.Setenv("FAST2SMS_API_KEY", f2s.APIKey)
	slow := make([]heraldtest.Fast2SMSReply, 1000)
	for i := range slow {
		slow[i] = heraldtest.Fast2SMSReply{HTTPStatus: 200, Delay: 300 * time.Millisecond}
	}
	f2s.Script(slow...)
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	cfg := fmt.Sprintf(`
otp:
  sealKey: %q
  hashKey: %q
  deliveryTimeout: 5s
  defaults: {resendCooldown: 0s, perPhone: {count: 0}, perApp: {rate: 0}}
providers:
  fast2sms: {baseURL: %q, timeout: 1s, retries: 1, backoff: 50ms}
%s`, key, key, f2s.URL, heraldtest.BankApp("dlt_only"))
	cfgFile := filepath.Join(t.TempDir(), "herald.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	p := startServe(t, dataDir, "--config", cfgFile)

	var accepted []string
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; len(accepted) < 150; i++ {
		body := fmt.Sprintf(`{"app":"bank","phone":"+9198%08d"}`, i)
		resp, err := client.Post(p.http+"/v1/otp/send?mode=async", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]any{}
		_ = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("send %d: %d %v", i, resp.StatusCode, m)
		}
		accepted = append(accepted, m["requestId"].(string))
		time.Sleep(5 * time.Millisecond)
	}
	// Many calls are in flight at the provider (each answer takes 300 ms).
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p = startServe(t, dataDir, "--config", cfgFile)
	b := connectServe(t, p, dataDir)

	outcome := map[string]event.OTPDeliveryCompleted{}
	heraldtest.Eventually(t, 60*time.Second, "an outcome for every accepted send", func() bool {
		for _, e := range heraldtest.Events(t, b, streams.Events, "events.otp_delivery_completed") {
			if c, ok := event.As[event.OTPDeliveryCompleted](e); ok {
				outcome[e.RequestID] = c
			}
		}
		for _, id := range accepted {
			if _, ok := outcome[id]; !ok {
				return false
			}
		}
		return true
	})
	unknown, reasons := 0, map[string]int{}
	for _, id := range accepted {
		reasons[outcome[id].Status+" "+outcome[id].Reason]++
		if outcome[id].Reason == "outcome_unknown" {
			unknown++
		}
	}
	t.Logf("outcomes: %v", reasons)
	t.Logf("%d sends accepted before the kill; %d ended outcome_unknown", len(accepted), unknown)
	// A code the user may hold is never revoked by an outcome in doubt.
	d := heraldtest.ConnectAs(t, p.nats, bus.CredsDir(dataDir), access.Dispatcher)
	heraldtest.Eventually(t, 30*time.Second, "the dispatcher's outcomes consumer caught up", func() bool {
		c, err := d.JS.Consumer(context.Background(), streams.Events, "dispatcher-otp-outcomes")
		if err != nil {
			return false
		}
		info := c.CachedInfo()
		return info.NumPending == 0 && info.NumAckPending == 0
	})
	for _, e := range heraldtest.Events(t, b, streams.Events, "events.otp_revoked") {
		if outcome[e.RequestID].Reason == "outcome_unknown" {
			t.Errorf("request %s ended in doubt and its code was revoked", e.RequestID)
		}
	}
	if dl := heraldtest.Messages(t, b.JS, streams.DLQ); len(dl) != 0 {
		t.Errorf("%d dead letters after the crash, want none: %s %s", len(dl), dl[0].Headers(), dl[0].Data())
	}
	perPhone := map[string]int{}
	for _, r := range f2s.Requests() {
		perPhone[r.Numbers]++
		if perPhone[r.Numbers] > 1 {
			t.Errorf("%s got a second SMS", r.Numbers)
		}
	}
	// Caught up (readyz waits for the incident projection): the crash opened
	// no incident, for the providers or the app.
	heraldtest.Eventually(t, 30*time.Second, "ready after the restart", func() bool {
		resp, err := client.Get(p.http + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	for _, e := range heraldtest.Events(t, b, streams.Incidents) {
		t.Errorf("the crash opened an incident: %s %s", e.Type, e.Raw)
	}
}
