package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/streams"
)

// cli runs herald in-process and returns its exit code and output.
func cli(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"serve", "--help"}, {"publish", "--help"}, {"tail", "--help"},
		{"streams", "--help"}, {"streams", "apply", "--help"}, {"streams", "info", "--help"},
		{"rules", "check", "--help"}, {"incidents", "list", "--help"}, {"incidents", "show", "--help"},
		{"incidents", "rebuild", "--help"}, {"replay", "--help"}, {"bench", "incidents", "--help"},
		{"dlq", "--help"}, {"dlq", "list", "--help"}, {"dlq", "show", "--help"}, {"dlq", "purge", "--help"}, {"bench", "bus", "--help"},
		{"keys", "--help"}, {"keys", "new", "--help"}, {"keys", "hash", "--help"},
	} {
		code, out, _ := cli(t, "", args...)
		if code != exitOK || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: exit %d, output %q", args, code, out)
		}
	}
}

func TestUsageErrorsExitWith2(t *testing.T) {
	tests := [][]string{
		{"frobnicate"},
		{"publish", "--bogus"},
		{"publish"},
		{"publish", "--type", "otp_verified"},
		{"publish", "{not json"},
		{"serve", "--target", "dispatcher,mailer"},
		{"tail", "--all", "--seq", "3"},
		{"serve", "--log-format", "xml", "--data", "/nonexistent/never-created"},
	}
	for _, args := range tests {
		code, _, errOut := cli(t, "", args...)
		if code != exitUsage || !strings.HasPrefix(errOut, "herald: ") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// A configuration mistake found while the services are wired is reported
// as its cause (the key), not as fx's chain of constructors, with exit 2.
func TestAWiringConfigurationErrorIsItsCause(t *testing.T) {
	code, _, errOut := cli(t, "", "serve", "--nats-listen", "none", "--data", t.TempDir(), "--http", "127.0.0.1:0")
	if code != exitUsage || !strings.Contains(errOut, "nats.inProcess") || strings.Contains(errOut, "could not build") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestServeRejectsABadConfigNamingTheKeyAndStartsNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "herald.yaml")
	data := filepath.Join(dir, "data")
	tests := []struct{ name, yaml, want string }{
		{"core key", "http:\n  adress: 127.0.0.1:9\n", `line 2: http: unknown key "adress"`},
		{"section", "mystery: 1\n", `unknown section(s) mystery`},
		{"otp app", "apps:\n  shop:\n    deliveryPolicy: carrier_pigeon\n", `apps.shop.deliveryPolicy: "carrier_pigeon" is not`},
		{"incident rule", "incident:\n  rules:\n    - {name: r1, kind: count, match: {types: [otp_teleported]}, groupBy: [app], window: 5m, severities: [{level: P3, atLeast: 1}]}\n",
			"rule r1"},
		{"notifier route", "notifier:\n  routes:\n    - {name: x, channels: [\"#ops\"], severity: P9}\n", `notifier.routes[0]: unknown key "severity"`},
		{"http key type", "http:\n  auth:\n    keys:\n      - {name: shop, role: producer, hash: \"sha256:" + strings.Repeat("0", 64) + "\", types: [otp_verified]}\n",
			`key "shop": types: otp_verified is published by Herald's dispatcher only`},
		{"http key in clear", "http:\n  auth:\n    keys:\n      - {name: ops, role: operator, hash: hrld_abc}\n", `key "ops": hash must be`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, errOut := cli(t, "", "serve", "--config", path, "--data", data, "--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0")
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q, want it to mention %q", code, errOut, tt.want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("the data directory exists: something started before the configuration was checked")
			}
		})
	}
}

func TestPublishValidatesAndTailShowsTheEvents(t *testing.T) {
	srv := heraldtest.StartSecureServer(t).ApplyStreams(t, app.ServiceStreamDefs()...)
	b := srv.As(t, access.OperatorRead)
	url, data := srv.ClientURL(), srv.DataDir

	code, out, errOut := cli(t, "", "publish", "--nats", url, "--data-dir", data, "-t", "integration_call_completed", "-s", "billing",
		"--request-id", "req-7", "-d", `{"integration":"stripe","operation":"charges.create","statusCode":401,"latencyMs":12}`)
	if code != exitOK || !strings.Contains(out, "published integration_call_completed") || !strings.Contains(out, "seq=1") {
		t.Fatalf("publish: exit %d, out %q, err %q", code, out, errOut)
	}
	lines := `{"type":"integration_call_completed","source":"shop","requestid":"req-8","data":{"integration":"stripe","operation":"refunds.create","statusCode":200,"latencyMs":9}}
{"type":"integration_call_completed","source":"shop","requestid":"req-8","data":{"integration":"stripe","operation":"charges.capture","statusCode":503,"latencyMs":30}}`
	if code, out, errOut := cli(t, lines, "publish", "--nats", url, "--data-dir", data, "-"); code != exitOK || strings.Count(out, "published") != 2 {
		t.Fatalf("publish stdin: exit %d, out %q, err %q", code, out, errOut)
	}
	code, _, errOut = cli(t, "", "publish", "--nats", url, "--data-dir", data, "-t", "integration_call_completed", "-d", `{"integration":"stripe"}`)
	if code != exitUsage || !strings.Contains(errOut, "statusCode") {
		t.Errorf("invalid publish: exit %d, stderr %q", code, errOut)
	}
	// A Herald-owned type: the producer's credentials may not publish it.
	code, _, errOut = cli(t, "", "publish", "--nats", url, "--data-dir", data, "-t", "otp_verified", "-d", `{"app":"shop","attempts":1}`)
	if code != exitUsage || !strings.Contains(errOut, "published by the dispatcher role only") {
		t.Errorf("publish otp_verified as producer: exit %d, stderr %q", code, errOut)
	}

	code, out, _ = cli(t, "", "tail", "--nats", url, "--data-dir", data, "--all", "--follow=false", "--json")
	if code != exitOK {
		t.Fatalf("tail: exit %d", code)
	}
	var got []Line
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var line Line
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("tail line %q: %v", l, err)
		}
		got = append(got, line)
		// Each line is a CloudEvent in the JSON format, as the official SDK reads it.
		var ce cloudevents.Event
		if err := json.Unmarshal([]byte(l), &ce); err != nil || ce.Validate() != nil {
			t.Errorf("tail --json line is not a valid CloudEvent (%v, %v): %s", err, ce.Validate(), l)
		}
	}
	if len(got) != 3 || got[0].Type != "integration_call_completed" || got[0].Source != "billing" ||
		got[0].RequestID != "req-7" || got[2].Seq != 3 || got[0].Invalid != "" {
		t.Errorf("tail --json: %+v", got)
	}
	// tail alone prints what is there and exits, as tail does (-f follows).
	code, plain, _ := cli(t, "", "tail", "--nats", url, "--data-dir", data, "--json")
	if code != exitOK || plain != out {
		t.Errorf("tail without -f: exit %d, %q, want what --all --follow=false printed", code, plain)
	}
	_, out, _ = cli(t, "", "tail", "--nats", url, "--data-dir", data, "--request-id", "req-8")
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, "events#3  integration_call_completed  req=req-8  src=shop") {
		t.Errorf("tail --request-id: %q", out)
	}
	_, out, _ = cli(t, "", "tail", "--nats", url, "--data-dir", data, "-t", "integration_call_completed")
	if strings.Count(out, "\n") != 3 {
		t.Errorf("tail --type: %q", out)
	}
	if n := len(heraldtest.Messages(t, b.JS, streams.Events)); n != 3 {
		t.Errorf("%d events stored", n)
	}
}

func TestClientCommandsWithoutCredentialsOrRefusedExitClearly(t *testing.T) {
	srv := heraldtest.StartSecureServer(t).ApplyStreams(t, app.ServiceStreamDefs()...)
	url := srv.ClientURL()
	code, _, errOut := cli(t, "", "tail", "--nats", url, "--data-dir", t.TempDir(), "--all", "--follow=false")
	if code != exitUsage || !strings.Contains(errOut, "no NATS credentials for the operator-read role") {
		t.Errorf("no credentials: exit %d, stderr %q", code, errOut)
	}
	// Credentials of another operator: the server refuses them.
	other := heraldtest.StartSecureServer(t)
	code, _, errOut = cli(t, "", "tail", "--nats", url, "--data-dir", other.DataDir, "--all", "--follow=false")
	if code != exitFailure || !strings.Contains(strings.ToLower(errOut), "authorization violation") {
		t.Errorf("refused: exit %d, stderr %q", code, errOut)
	}
	// --creds names the file; the role it is for is read from it.
	code, _, errOut = cli(t, "", "tail", "--nats", url, "--creds", filepath.Join(srv.CredsDir, "operator-read.creds"), "--all", "--follow=false")
	if code != exitOK {
		t.Errorf("--creds: exit %d, stderr %q", code, errOut)
	}
}

func TestServeOnAnExternalServerWithoutCredentialsExitsWith2(t *testing.T) {
	srv := heraldtest.StartSecureServer(t).ApplyStreams(t, app.ServiceStreamDefs()...)
	code, _, errOut := cli(t, "", "serve", "--nats", srv.ClientURL(), "--data", t.TempDir(), "--http", "127.0.0.1:0",
		"--target", "notifier")
	if code != exitUsage || !strings.Contains(errOut, "no nats credentials for role") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestPublishToAnUnreachableServerExitsWith1(t *testing.T) {
	srv := heraldtest.StartSecureServer(t)
	code, _, errOut := cli(t, "", "publish", "--nats", "nats://127.0.0.1:1", "--data-dir", srv.DataDir, "--timeout", "500ms",
		"-t", "otp_verified", "-d", `{"app":"shop","attempts":1}`)
	if code != exitFailure || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestStreamsApplyIsIdempotentAndInfoShowsThem(t *testing.T) {
	srv := heraldtest.StartSecureServer(t)
	url, data := srv.ClientURL(), srv.DataDir
	defs, err := streams.Load(streams.DefaultConfig(), app.ServiceStreamDefs()...)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli(t, "", "streams", "apply", "--nats", url, "--data-dir", data)
	if code != exitOK || strings.Count(out, "created") != len(defs) {
		t.Fatalf("first apply: exit %d, %q %q", code, out, errOut)
	}
	code, out, _ = cli(t, "", "streams", "apply", "--nats", url, "--data-dir", data, "--json")
	if code != exitOK || strings.Count(out, `"action":"unchanged"`) != len(defs) || strings.Count(out, "\n") != len(defs) {
		t.Fatalf("second apply: exit %d, %q", code, out)
	}
	code, out, _ = cli(t, "", "streams", "info", "--nats", url, "--data-dir", data, "--json", "EVENTS")
	var info struct {
		Name     string
		Subjects []string
		Replicas int
		MaxAge   string
	}
	if err := json.Unmarshal([]byte(out), &info); code != exitOK || err != nil || info.Name != "EVENTS" ||
		info.Subjects[0] != "events.>" || info.Replicas != 1 || info.MaxAge != "" {
		t.Errorf("info --json EVENTS: exit %d, %v: %q", code, err, out)
	}
	code, out, _ = cli(t, "", "streams", "info", "--nats", url, "--data-dir", data)
	for _, s := range []string{"EVENTS", "INCIDENTS", "NOTIFICATIONS", "DLQ", "events.>", "720h0m0s"} {
		if code != exitOK || !strings.Contains(out, s) {
			t.Errorf("info lacks %q: %s", s, out)
		}
	}
	if code, _, _ := cli(t, "", "streams", "info", "--nats", url, "--data-dir", data, "NOPE"); code != exitUsage {
		t.Errorf("unknown stream: exit %d", code)
	}
}

func TestDLQListShowAndPurge(t *testing.T) {
	a := apptest.StartApp(t, apptest.WithTargets(app.Incident))
	url, data := a.NATSURL, a.DataDir
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// What a producer can send that is not an event: the incident
	// projection, which reads all of EVENTS, dead-letters it.
	if _, err := a.As(t, access.Producer).JS.Publish(ctx, "events.integration_call_completed", []byte(`{"junk":true}`)); err != nil {
		t.Fatal(err)
	}
	heraldtest.Eventually(t, 10*time.Second, "a dead letter", func() bool {
		return len(heraldtest.Messages(t, a.Bus.JS, streams.DLQ)) == 1
	})
	code, out, _ := cli(t, "", "dlq", "list", "--nats", url, "--data-dir", data)
	if code != exitOK || !strings.Contains(out, "incident") || !strings.Contains(out, "EVENTS#") || !strings.Contains(out, "envelope") {
		t.Errorf("list: exit %d: %s", code, out)
	}
	code, out, _ = cli(t, "", "dlq", "show", "--nats", url, "--data-dir", data, "1", "--data")
	if code != exitOK || strings.TrimSpace(out) != `{"junk":true}` {
		t.Errorf("show --data: exit %d: %q", code, out)
	}
	if code, out, _ := cli(t, "", "dlq", "purge", "--nats", url, "--data-dir", data, "1"); code != exitOK || !strings.Contains(out, "purged 1") {
		t.Errorf("purge: exit %d: %s", code, out)
	}
	if code, _, errOut := cli(t, "", "dlq", "show", "--nats", url, "--data-dir", data, "1"); code != exitUsage || !strings.Contains(errOut, "no dead letter 1") {
		t.Errorf("show after purge: exit %d: %s", code, errOut)
	}
}

func TestHumanLinesShortenLongDataOnARuneBoundary(t *testing.T) {
	long := `{"text":"` + strings.Repeat("é", 300) + `"}`
	got := shorten(long, maxHumanData)
	if len(got) > maxHumanData+40 || !strings.HasSuffix(got, fmt.Sprintf("… (%d bytes, --json shows all)", len(long))) || !utf8.ValidString(got) {
		t.Errorf("shorten: %q", got)
	}
	if s := shorten(`{"a":1}`, maxHumanData); s != `{"a":1}` {
		t.Errorf("a short value changed: %q", s)
	}
}
