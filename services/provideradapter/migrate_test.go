package provideradapter_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/streams"
)

// An older adapter consumed both leg kinds with one durable. The first
// start of this one creates the fallback durable after that durable's ack
// floor: fallback legs handled before the upgrade are not handled again.
func TestFallbackDurableContinuesWhereTheCombinedDurableStopped(t *testing.T) {
	r := startRig(t, "", apptest.WithTargets("dispatcher"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := nats.Connect(r.NATSURL, nats.UserCredentials(heraldtest.UnrestrictedCreds(t, bus.CredsDir(r.DataDir))))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	old, err := js.CreateConsumer(ctx, streams.Events, jetstream.ConsumerConfig{Durable: "provider-adapter",
		AckPolicy: jetstream.AckExplicitPolicy, FilterSubjects: []string{"events.otp_dlt_dispatch", "events.otp_dlt_fallback"}})
	if err != nil {
		t.Fatal(err)
	}
	adapter := r.As(t, access.ProviderAdapter)
	var handled []uint64
	for i := range 3 {
		ack, err := adapter.JS.Publish(ctx, "events.otp_dlt_fallback", fmt.Appendf(nil, `{"handled-before-the-upgrade":%d}`, i))
		if err != nil {
			t.Fatal(err)
		}
		handled = append(handled, ack.Sequence)
	}
	batch, err := old.Fetch(3, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("the old durable handled %d legs, want 3", n)
	}

	startAdapter(t, r)
	after, err := adapter.JS.Publish(ctx, "events.otp_dlt_fallback", []byte(`{"after-the-upgrade":true}`))
	if err != nil {
		t.Fatal(err)
	}
	// The new leg (not an event: dead-lettered) shows the durable runs;
	// the legs handled before the upgrade never reach it.
	var lettered []string
	heraldtest.Eventually(t, 10*time.Second, "the leg published after the upgrade in the DLQ", func() bool {
		lettered = lettered[:0]
		for _, m := range heraldtest.Messages(t, r.Bus.JS, streams.DLQ) {
			if m.Headers().Get(bus.HeaderDLQConsumer) == "provider-adapter-fallback" {
				lettered = append(lettered, m.Headers().Get(bus.HeaderDLQSequence))
			}
		}
		return len(lettered) > 0
	})
	if len(lettered) != 1 || lettered[0] != fmt.Sprint(after.Sequence) {
		t.Errorf("dead letters of the fallback durable: seqs %v, want only %d (not %v)", lettered, after.Sequence, handled)
	}
}
