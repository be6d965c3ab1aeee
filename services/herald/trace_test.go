package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhq/herald/services/herald/app/apptest"
)

func TestTraceShowsARequestEndToEnd(t *testing.T) {
	a := apptest.StartApp(t)
	r := a.Do(t, "POST", "/v1/otp/send", map[string]string{"app": "demo", "phone": "+919812345678"})
	if r.Status != http.StatusOK {
		t.Fatalf("send: %d %s", r.Status, r.Body)
	}
	id, _ := r.JSON(t)["requestId"].(string)
	client := []string{"--nats", a.NATSURL, "--data-dir", a.DataDir}

	code, out, errOut := cli(t, "", append([]string{"trace", id}, client...)...)
	if code != exitOK {
		t.Fatalf("trace: exit %d, %s", code, errOut)
	}
	// The runbook's chain, in order, and how it ended.
	at := 0
	for _, step := range []string{"otp_generated", "otp_dlt_dispatch", "dlt_payload_ready", "provider_response_received", "otp_delivery_completed"} {
		i := strings.Index(out[at:], step)
		if i < 0 {
			t.Fatalf("trace lacks %s after byte %d:\n%s", step, at, out)
		}
		at += i
	}
	if !strings.HasPrefix(out, "request "+id+"  app demo  ") || strings.Contains(out, "9812345678") {
		t.Errorf("trace header or a phone in clear:\n%s", out)
	}

	code, out, _ = cli(t, "", append([]string{"trace", id, "--json"}, client...)...)
	var tr struct {
		RequestID, App, Outcome string
		Steps                   []struct{ Type, Detail string }
	}
	if err := json.Unmarshal([]byte(out), &tr); code != exitOK || err != nil || tr.RequestID != id || tr.App != "demo" ||
		tr.Outcome == "in progress" || len(tr.Steps) < 5 || tr.Steps[0].Type != "otp_generated" {
		t.Errorf("trace --json: exit %d, %v: %s", code, err, out)
	}

	if code, _, errOut := cli(t, "", append([]string{"trace", "no-such-request"}, client...)...); code != exitFailure ||
		!strings.Contains(errOut, "no event of request no-such-request") {
		t.Errorf("unknown request: exit %d, %s", code, errOut)
	}
}
