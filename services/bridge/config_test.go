package bridge_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app"
)

// A mistake in the bridge section or the targets stops the start (exit 2:
// config.ErrInvalid) and names the key; a URL's password is never shown.
func TestBridgeConfigErrorsNameTheKey(t *testing.T) {
	t.Setenv("HERALD_BRIDGE_BILLING_URL", "")
	amqp := func(entry string) string {
		return "bridge:\n  herald: {url: http://127.0.0.1:9}\n  amqp:\n    - name: billing\n" + entry
	}
	for _, c := range []struct {
		name, yaml string
		targets    []string
		want       string
	}{
		{"no bridge configured", "", []string{app.Bridge}, "bridge.amqp, outbox: the bridge target needs at least one bridge configured"},
		{"a bad name", "bridge:\n  amqp: [{name: Billing, url: 'amqp://h', exchange: x, deadLetterExchange: d}]", []string{app.Bridge}, `bridge.amqp[0].name: "Billing" must be lower case`},
		{"a name twice", "bridge:\n  herald: {url: http://127.0.0.1:9}\n  amqp: [{name: b, url: 'amqp://h', exchange: x, deadLetterExchange: d}]\n  outbox: [{name: b, dsn: 'postgres://u@h/db'}]", []string{app.Bridge}, `bridge.outbox[0].name: "b" is also the name of amqp[0]`},
		{"no url", amqp("      exchange: sms\n      deadLetterExchange: sms.dead\n"), []string{app.Bridge}, "bridge.amqp[0].url: none configured (set it, its file, or HERALD_BRIDGE_BILLING_URL)"},
		{"not an amqp url", amqp("      url: 'http://u:secret@h/'\n      exchange: sms\n      deadLetterExchange: sms.dead\n"), []string{app.Bridge}, "bridge.amqp[0].url: not an amqp:// or amqps:// URL"},
		{"no exchange", amqp("      url: 'amqp://u:secret@h/'\n      deadLetterExchange: sms.dead\n"), []string{app.Bridge}, "bridge.amqp[0].exchange: the producer's exchange is required"},
		{"no dead letters", amqp("      url: 'amqp://u:secret@h/'\n      exchange: sms\n"), []string{app.Bridge}, "bridge.amqp[0].deadLetterExchange: required"},
		{"dead letters to itself", amqp("      url: 'amqp://u:secret@h/'\n      exchange: sms\n      deadLetterExchange: sms\n"), []string{app.Bridge}, "bridge.amqp[0].deadLetterExchange: must not be the exchange"},
		{"concurrency", amqp("      url: 'amqp://u:secret@h/'\n      exchange: sms\n      deadLetterExchange: d\n      concurrency: 1000\n"), []string{app.Bridge}, "bridge.amqp[0].concurrency: 1000 is not between 1 and 256"},
		{"no API for the sends", "bridge:\n  amqp: [{name: billing, url: 'amqp://u:secret@h/', exchange: sms, deadLetterExchange: d}]", []string{app.Bridge},
			"bridge.herald.url: the dispatcher target does not run in this process"},
		{"an unknown key", amqp("      url: 'amqp://u:secret@h/'\n      exchange: sms\n      deadLetterExchange: d\n      prefetch: 3\n"), []string{app.Bridge}, "prefetch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := app.New(app.Options{ConfigYAML: c.yaml, Targets: c.targets, DataDir: t.TempDir(),
				NATSURL: "nats://127.0.0.1:1", HTTPAddr: "127.0.0.1:0", Logger: heraldtest.Logger(t)})
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("error %v, want %q (invalid configuration)", err, c.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

// --target takes the platform's services, "all", and bridge, which "all"
// leaves out.
func TestTargetsTakeAllAndTheBridge(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"", app.AllTargets()},
		{"all", app.AllTargets()},
		{"all,bridge", append(app.AllTargets(), app.Bridge)},
		{"bridge", []string{app.Bridge}},
		{"dispatcher,bridge,dispatcher", []string{app.Dispatcher, app.Bridge}},
	} {
		got, err := app.ParseTargets(c.in)
		if err != nil || strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("ParseTargets(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	if _, err := app.ParseTargets("bridges"); err == nil || !strings.Contains(err.Error(), "targets: all, dispatcher, provider-adapter, incident, notifier, bridge") {
		t.Errorf("an unknown target: %v", err)
	}
}

// A RabbitMQ that does not answer stops the start and says which bridge;
// the URL's password is not in the message.
func TestABrokerThatDoesNotAnswerStopsTheStartWithoutThePassword(t *testing.T) {
	srv := heraldtest.StartSecureServer(t)
	yaml := "bridge:\n  herald: {url: http://127.0.0.1:9}\n  amqp: [{name: billing, url: 'amqp://u:secret@127.0.0.1:1/', exchange: sms, deadLetterExchange: d}]\n"
	_, err := app.New(app.Options{ConfigYAML: yaml, Targets: []string{app.Bridge}, DataDir: t.TempDir(),
		NATSURL: srv.ClientURL(), NATSCredsDir: srv.CredsDir, HTTPAddr: "127.0.0.1:0", Logger: heraldtest.Logger(t)})
	if err == nil || !strings.Contains(err.Error(), "bridge billing: connecting to RabbitMQ") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error %v, want the bridge named and no password", err)
	}
}
