package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/streams"
)

// deploy/nats's three configurations, as shipped: only Herald's roles get
// in, over TLS, and Herald runs on them.
func TestDeployClusterRefusesAnonymousClientsAndServesHerald(t *testing.T) {
	c := heraldtest.StartDeployCluster(t, "../../../deploy/nats")

	for name, opts := range map[string][]nats.Option{
		"anonymous over TLS": {nats.RootCAs(c.TLS.CA)},
		"anonymous in clear": nil,
	} {
		t.Run(name, func(t *testing.T) {
			nc, err := nats.Connect(c.URLs, append(opts, nats.MaxReconnects(0), nats.Timeout(5*time.Second))...)
			if err == nil {
				nc.Close()
				t.Fatal("connected without credentials")
			}
		})
	}
	t.Run("credentials without the CA", func(t *testing.T) {
		nc, err := nats.Connect(c.URLs, nats.UserCredentials(c.CredsDir+"/"+access.CredsFile(access.OperatorRead)), nats.MaxReconnects(0))
		if err == nil {
			nc.Close()
			t.Fatal("connected without verifying the server's certificate")
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defs, err := streams.Load(streams.Config{Replicas: 3}, app.ServiceStreamDefs()...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := streams.Apply(ctx, c.As(t, access.OperatorAdmin).JS, defs, 3); err != nil {
		t.Fatalf("operator-admin applies the streams: %v", err)
	}
	producer := c.As(t, access.Producer)
	acks, err := producer.Publish(ctx, event.New("billing", event.IntegrationCallCompleted{Integration: "stripe",
		Operation: "charges.create", StatusCode: 200, LatencyMs: 10}))
	if err != nil || len(acks) != 1 {
		t.Fatalf("producer publishes its type: %v", err)
	}
	got := heraldtest.Events(t, c.As(t, access.OperatorRead), streams.Events, "events.integration_call_completed")
	if len(got) != 1 || got[0].ID != acks[0].ID {
		t.Fatalf("operator-read reads %d events", len(got))
	}

	// herald serve --nats on the cluster, each role's credentials from
	// nats.credsDir, the CA from nats.caFile.
	a := apptest.StartApp(t, apptest.WithTargets(app.Dispatcher), apptest.WithNATS(c.URLs),
		apptest.WithNATSCredsDir(c.CredsDir),
		apptest.WithConfig(fmt.Sprintf("nats:\n  caFile: %q\nstreams:\n  replicas: 3\n", c.TLS.CA)))
	r := a.Do(t, "POST", "/v1/events", `{"type":"integration_call_completed","source":"billing",
	 "data":{"integration":"stripe","operation":"refunds.create","statusCode":200,"latencyMs":8}}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("POST /v1/events on the cluster: %d %s", r.Status, r.Body)
	}
	if ready := a.Do(t, "GET", "/readyz", nil); ready.Status != http.StatusOK || !strings.Contains(string(ready.Body), "jetstream") {
		t.Errorf("readyz: %d %s", ready.Status, ready.Body)
	}
}
