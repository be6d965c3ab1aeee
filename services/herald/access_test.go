package main

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/services/herald/app/apptest"
)

func TestServeRefusesAnExposedHTTPAddressWithoutKeys(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.10:8080"} {
		t.Run(addr, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			cmd := exec.Command(heraldBin, "serve", "--data", data, "--http", addr, "--nats-listen", "127.0.0.1:0")
			cmd.Dir = t.TempDir()
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
				t.Fatalf("exit %v, want %d\n%s", err, exitUsage, out)
			}
			for _, want := range []string{"no HTTP key is configured", "herald keys new", "http.auth.keys", "127.0.0.1"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("the message does not say %q:\n%s", want, out)
				}
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("the data directory exists: something started before the check")
			}
		})
	}
}

// mintKey runs herald keys new and returns the key and its entry.
func mintKey(t *testing.T, args ...string) (string, api.KeyConfig) {
	t.Helper()
	code, out, errOut := cli(t, "", append([]string{"keys", "new"}, args...)...)
	if code != exitOK {
		t.Fatalf("keys new: exit %d: %s", code, errOut)
	}
	var key string
	var entry strings.Builder
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "hrld_"):
			key = l
		case !strings.HasPrefix(l, "#"):
			entry.WriteString(l + "\n")
		}
	}
	var kcs []api.KeyConfig
	if err := yaml.Unmarshal([]byte(entry.String()), &kcs); err != nil || len(kcs) != 1 || key == "" {
		t.Fatalf("keys new printed %q (%v)", out, err)
	}
	if kcs[0].Hash != api.HashKey(key) || strings.Contains(entry.String(), key) {
		t.Fatalf("the entry is not the key's hash: %q", out)
	}
	return key, kcs[0]
}

func TestKeysNewMintsKeysThatOperatorRoutesEnforce(t *testing.T) {
	opsKey, ops := mintKey(t, "--name", "ops", "--role", "operator")
	prodKey, prod := mintKey(t, "--name", "billing", "--role", "producer", "--types", "integration_call_completed")
	if code, _, errOut := cli(t, "", "keys", "new", "--name", "x", "--role", "producer", "--types", "otp_verified"); code != exitUsage ||
		!strings.Contains(errOut, `key "x": types: otp_verified is published by Herald's dispatcher only`) {
		t.Errorf("a Herald-owned type: exit %d, %s", code, errOut)
	}
	if code, out, _ := cli(t, prodKey+"\n", "keys", "hash"); code != exitOK || strings.TrimSpace(out) != prod.Hash {
		t.Errorf("keys hash: exit %d, %q, want %s", code, out, prod.Hash)
	}
	doc, err := yaml.Marshal(map[string]any{"http": map[string]any{"auth": map[string]any{"keys": []api.KeyConfig{ops, prod}}}})
	if err != nil {
		t.Fatal(err)
	}
	a := apptest.StartApp(t, apptest.WithConfig(string(doc)))
	operator := []string{"Authorization", "Bearer " + opsKey}
	producer := []string{"Authorization", "Bearer " + prodKey}
	sub := map[string]any{"channel": "#ops", "match": map[string]string{"app": "shop"}}
	routes := []struct {
		method, path string
		body         any
		ok           int
	}{
		{"GET", "/v1/incidents", nil, 200},
		{"GET", "/v1/incidents/nope", nil, 404},
		{"GET", "/v1/incident-rules", nil, 200},
		{"POST", "/v1/incidents/rebuild", nil, 202},
		{"GET", "/v1/subscriptions", nil, 200},
		{"POST", "/v1/subscriptions", sub, 201},
		{"DELETE", "/v1/subscriptions/sub-nope", nil, 404},
		{"GET", "/v1/silences", nil, 200},
		{"POST", "/v1/silences", map[string]any{"matchers": []map[string]string{{"name": "app", "value": "shop"}}, "duration": "1h", "createdBy": "ana"}, 201},
		{"DELETE", "/v1/silences/sil-nope", nil, 404},
		{"GET", "/v1/health/delivery", nil, 200},
		{"GET", "/v1/dlq", nil, 200},
		{"GET", "/v1/trace/nope", nil, 200},
		{"GET", "/v1/simulator", nil, 200},
		{"PUT", "/v1/simulator", map[string]any{"mode": "ok"}, 200},
		{"GET", "/v1/simulator/outbox", nil, 200},
	}
	for _, r := range routes {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			if got := a.Do(t, r.method, r.path, r.body); got.Status != http.StatusUnauthorized || got.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("without a key: %d %s", got.Status, got.Body)
			}
			if got := a.Do(t, r.method, r.path, r.body, producer...); got.Status != http.StatusForbidden {
				t.Errorf("with a producer key: %d %s", got.Status, got.Body)
			}
			if got := a.Do(t, r.method, r.path, r.body, operator...); got.Status != r.ok {
				t.Errorf("with the operator key: %d %s, want %d", got.Status, got.Body, r.ok)
			}
		})
	}
	if subs := a.Do(t, "GET", "/v1/subscriptions", nil, operator...).JSON(t)["subscriptions"].([]any); len(subs) != 1 {
		t.Errorf("%d subscriptions after refused and accepted requests, want 1", len(subs))
	}

	// herald incidents rebuild asks over NATS, as operator-admin: the
	// active writer answers; a reader's credentials may not ask.
	if code, out, errOut := cli(t, "", "incidents", "rebuild", "--nats", a.NATSURL, "--data-dir", a.DataDir); code != exitOK ||
		!strings.Contains(out, "rebuilding") {
		t.Errorf("rebuild: exit %d, %s %s", code, out, errOut)
	}
	reader := filepath.Join(a.DataDir, "nats", "operator-read.creds")
	if code, _, errOut := cli(t, "", "incidents", "rebuild", "--nats", a.NATSURL, "--creds", reader, "--timeout", "2s"); code != exitFailure ||
		!strings.Contains(errOut, "no incident writer answered") {
		t.Errorf("rebuild as operator-read: exit %d, %s", code, errOut)
	}
}
