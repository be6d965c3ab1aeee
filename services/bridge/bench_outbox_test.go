package bridge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
)

// BenchmarkOutboxForwarding: b.N rows committed in transactions of 1 or
// 100 rows, then timed until all are in EVENTS (rows/s), for several batch
// sizes; and, as
// the reference, the same events published one after the other with
// bus.Publish, as the bridge publishes each row (jetstream-publish/s). Run
// with a fixed count: go test -run '^$' -bench OutboxForwarding
// -benchtime 3000x ./services/bridge/
func BenchmarkOutboxForwarding(b *testing.B) {
	e := startOutboxEnv(b)
	cat := heraldtest.Catalog(b)
	producer := e.srv.As(b, access.Producer)
	for _, c := range []struct{ batch, perTx int }{{1, 1}, {10, 1}, {100, 1}, {1, 100}, {10, 100}, {100, 100}} {
		b.Run(fmt.Sprintf("batch=%d/rows-per-tx=%d", c.batch, c.perTx), func(b *testing.B) {
			name := fmt.Sprintf("bench_%d_%d", c.batch, c.perTx)
			table := name + "_outbox"
			e.startBridge(b, e.bridgeYAML(name, table, fmt.Sprintf("      batchSize: %d\n", c.batch)))
			rows := make([]row, b.N)
			for i := range rows {
				rows[i] = rowOf(call(fmt.Sprintf("%s-%d-%d", name, b.N, i))) // b.N: the ids of a run of its own
			}
			// A transaction open from before the rows holds every one of
			// them back (the bridge reads below the oldest running
			// transaction) until it ends, when the timer starts.
			hold := e.begin(b)
			if _, err := hold.Exec(`SELECT pg_current_xact_id()`); err != nil {
				b.Fatal(err)
			}
			for i := 0; i < len(rows); i += c.perTx {
				e.commit(b, table, rows[i:min(i+c.perTx, len(rows))]...)
			}
			before := e.count(b)
			b.ResetTimer()
			start := time.Now()
			if err := hold.Rollback(); err != nil {
				b.Fatal(err)
			}
			heraldtest.Eventually(b, 10*time.Minute, "every row forwarded", func() bool { return e.count(b)-before >= uint64(b.N) })
			took := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/took.Seconds(), "rows/s")

			events := make([]*event.Event, b.N)
			for i := range events {
				ins, err := event.ParseInputs([]byte(call(fmt.Sprintf("%s-ref-%d-%d", name, b.N, i))))
				if err != nil {
					b.Fatal(err)
				}
				evs, err := cat.ToEvents(ins)
				if err != nil {
					b.Fatal(err)
				}
				events[i] = evs[0]
			}
			start = time.Now()
			for _, ev := range events {
				if _, err := producer.Publish(context.Background(), ev); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jetstream-publish/s")
		})
	}
}
