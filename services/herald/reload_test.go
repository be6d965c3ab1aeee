package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func rulesFingerprints(t *testing.T, url string) (inForce, configured string, names []string) {
	t.Helper()
	resp, err := http.Get(url + "/v1/incident-rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info struct {
		InForce []struct {
			Name string `json:"name"`
		} `json:"inForce"`
		Fingerprint string `json:"fingerprint"`
		Configured  string `json:"configuredFingerprint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	for _, r := range info.InForce {
		names = append(names, r.Name)
	}
	return info.Fingerprint, info.Configured, names
}

func TestServeReloadsIncidentRulesOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "herald.yaml")
	write := func(s string) {
		if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("incident: {defaultRules: true}\n")
	p := startServe(t, dir, "--config", cfg, "--target", "dispatcher,incident")
	var before string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		now, configured, names := rulesFingerprints(t, p.http)
		if now != "" && now == configured && len(names) == 7 {
			before = now
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rules in force at start: %v", names)
		}
	}
	// An invalid file is refused and the rules stay.
	write("incident: {defaultRules: false, rules: [{name: x, kind: nope}]}\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.log(), "reload failed") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(p.log(), `kind: \"nope\" is not ratio`) {
		t.Errorf("no reload error naming the rule and field in the log:\n%s", p.log())
	}
	// A valid one is applied, without a restart.
	write(`incident:
  defaultRules: false
  rules:
    - {name: only-one, kind: count, match: {types: [otp_dlt_hard_failure]}, groupBy: [app], window: 5m, severities: [{level: P2, atLeast: 1}]}
`)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		now, configured, names := rulesFingerprints(t, p.http)
		if now != before && now == configured && len(names) == 1 && names[0] == "only-one" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rules not reloaded: %v\n%s", names, p.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit code %d", code)
	}
}
