package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/streams"
)

// TestAdapterKilledDuringTheProviderCallSendsExactlyOneSMS runs the provider
// adapter as its own process (herald serve --target provider-adapter),
// SIGKILLs it while Fast2SMS holds the answer to its call, and starts another
// adapter: the dispatch is redelivered, and Fast2SMS must still have received
// exactly one SMS.
func TestAdapterKilledDuringTheProviderCallSendsExactlyOneSMS(t *testing.T) {
	srv := heraldtest.StartSecureServer(t)
	f2s := heraldtest.NewFast2SMS(t)
	t.Setenv("FAST2SMS_API_KEY", f2s.APIKey)
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	cfg := fmt.Sprintf(`
otp:
  sealKey: %q
  hashKey: %q
  deliveryTimeout: 2s
  defaults: {resendCooldown: 0s}
providers:
  fast2sms: {baseURL: %q, timeout: 1s, retries: 2, backoff: 50ms}
%s`, key, key, f2s.URL, heraldtest.BankApp("dlt_with_fallback"))
	cfgFile := filepath.Join(t.TempDir(), "herald.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	dispatcher := apptest.StartApp(t, apptest.WithTargets("dispatcher"), apptest.WithNATS(srv.ClientURL()), apptest.WithNATSCredsDir(srv.CredsDir),
		apptest.WithConfig(cfg))
	adapter := startServe(t, t.TempDir(), "--target", "provider-adapter", "--nats", srv.ClientURL(),
		"--nats-creds-dir", srv.CredsDir, "--config", cfgFile)

	hold := f2s.HoldNext()
	resp := dispatcher.Do(t, "POST", "/v1/otp/send?mode=async", map[string]string{"app": "bank", "phone": "+919812345678"})
	if resp.Status != http.StatusAccepted {
		t.Fatalf("send: %d %s", resp.Status, resp.Body)
	}
	rid := resp.JSON(t)["requestId"].(string)
	select {
	case <-hold.Arrived:
	case <-time.After(20 * time.Second):
		t.Fatalf("the adapter never called Fast2SMS\n%s", adapter.log())
	}
	if err := adapter.cmd.Process.Kill(); err != nil { // SIGKILL: no drain, no ack
		t.Fatal(err)
	}
	<-adapter.done
	hold.Release() // the answer goes nowhere: its caller is dead

	apptest.StartApp(t, apptest.WithTargets("provider-adapter"), apptest.WithNATS(srv.ClientURL()), apptest.WithNATSCredsDir(srv.CredsDir),
		apptest.WithConfig(cfg))
	var completed *event.OTPDeliveryCompleted
	heraldtest.Eventually(t, 30*time.Second, "the redelivered dispatch to complete", func() bool {
		for _, e := range heraldtest.Events(t, dispatcher.Bus, streams.Events, "events.otp_delivery_completed") {
			if d, ok := event.As[event.OTPDeliveryCompleted](e); ok && e.RequestID == rid {
				completed = &d
				return true
			}
		}
		return false
	})
	if n := len(f2s.Requests()); n != 1 {
		t.Fatalf("Fast2SMS received %d SMS, want exactly 1", n)
	}
	// Whether the SMS left is unknown to Herald: it says so, and does not
	// fall back to another route (a second SMS).
	if completed.Status != "failed" || completed.Reason != "outcome_unknown" {
		t.Errorf("completed %+v", completed)
	}
	// The SMS did leave: the code the user holds is not revoked by the
	// outcome in doubt (issue 9), once the dispatcher has seen it.
	d := dispatcher.As(t, access.Dispatcher)
	heraldtest.Eventually(t, 10*time.Second, "the dispatcher's outcomes consumer caught up", func() bool {
		c, err := d.JS.Consumer(context.Background(), streams.Events, "dispatcher-otp-outcomes")
		return err == nil && c.CachedInfo().NumPending == 0 && c.CachedInfo().NumAckPending == 0
	})
	if n := len(heraldtest.Events(t, dispatcher.Bus, streams.Events, "events.otp_revoked")); n != 0 {
		t.Errorf("%d revocations after an outcome in doubt", n)
	}
	if v := dispatcher.Do(t, "POST", "/v1/otp/verify", map[string]string{"requestId": rid,
		"code": f2s.Requests()[0].Code()}); v.Status != http.StatusOK {
		t.Errorf("verify of the code the SMS carried: %d %s", v.Status, v.Body)
	}
}
