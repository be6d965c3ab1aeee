package bridge_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // the producer's driver, as docs/bridges.md shows it

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app"
	"github.com/heraldhq/herald/services/herald/app/apptest"
	"github.com/heraldhq/herald/streams"
)

// outboxEnv is a producer's PostgreSQL (its business table, orders) and
// Herald's event log, which bridges started by the test connect.
type outboxEnv struct {
	pg     *heraldtest.Postgres
	srv    *heraldtest.SecureServer
	db     *sql.DB // the producer's connection (application_name producer)
	reader *bus.Bus
}

func startOutboxEnv(t testing.TB, opts ...heraldtest.JetStreamOption) *outboxEnv {
	t.Helper()
	pg := heraldtest.StartPostgres(t)
	srv := heraldtest.StartSecureServer(t, opts...).ApplyStreams(t, app.ServiceStreamDefs()...)
	db, err := sql.Open("pgx", pg.DSN+"&application_name=producer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &outboxEnv{pg: pg, srv: srv, db: db, reader: srv.As(t, access.OperatorRead)}
	e.exec(t, `CREATE TABLE orders (id BIGSERIAL PRIMARY KEY, note TEXT NOT NULL)`)
	return e
}

func (e *outboxEnv) exec(t testing.TB, query string, args ...any) {
	t.Helper()
	if _, err := e.db.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// bridgeYAML is herald.yaml for one outbox bridge; more is added to its
// entry (indented as its keys).
func (e *outboxEnv) bridgeYAML(name, table, more string) string {
	return fmt.Sprintf(`bridge:
  herald:
    url: http://127.0.0.1:9 # the outbox sends no OTPs
  outbox:
    - name: %s
      dsn: %s
      table: %s
      pollInterval: 20ms
%s`, name, e.pg.DSN, table, more)
}

// startBridge runs the bridge target alone, on the event log's server with
// its own role's credentials.
func (e *outboxEnv) startBridge(t testing.TB, yaml string) *apptest.App {
	t.Helper()
	return apptest.StartApp(t, apptest.WithTargets(app.Bridge), apptest.WithNATS(e.srv.ClientURL()),
		apptest.WithNATSCredsDir(e.srv.CredsDir), apptest.WithConfig(yaml))
}

// call is an integration_call_completed event (a producer's type) with id
// (none if empty).
func call(id string) string {
	idField := ""
	if id != "" {
		idField = `"id":"` + id + `",`
	}
	return `{` + idField + `"specversion":"1.0","type":"integration_call_completed","source":"shop",` +
		`"data":{"integration":"stripe","operation":"charges.create","statusCode":200,"latencyMs":1}}`
}

// row is an outbox row: its uuid and payload (nil: NULL).
type row struct {
	uuid    string
	payload *string
}

func rowOf(payload string) row { return row{uuid: uuid.NewString(), payload: &payload} }

// insert writes an order and the rows in tx, as a producer does: the
// outbox row is part of the business transaction.
func insert(t testing.TB, tx *sql.Tx, table string, rows ...row) {
	t.Helper()
	ctx := context.Background()
	for _, r := range rows {
		if _, err := tx.ExecContext(ctx, `INSERT INTO orders (note) VALUES ($1)`, r.uuid); err != nil {
			t.Fatal(err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (uuid, payload, metadata, transaction_id) VALUES ($1, $2, '{}', pg_current_xact_id())`, r.uuid, r.payload)
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (e *outboxEnv) begin(t testing.TB) *sql.Tx {
	t.Helper()
	tx, err := e.db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// commit writes the rows in one committed transaction.
func (e *outboxEnv) commit(t testing.TB, table string, rows ...row) {
	t.Helper()
	tx := e.begin(t)
	insert(t, tx, table, rows...)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// stored counts the events in EVENTS by id, and lists the ids in the
// stream's order.
func (e *outboxEnv) stored(t testing.TB) (map[string]int, []string) {
	t.Helper()
	n := map[string]int{}
	var order []string
	for _, ev := range heraldtest.Events(t, e.reader, streams.Events) {
		n[ev.ID]++
		order = append(order, ev.ID)
	}
	return n, order
}

// count is how many messages EVENTS holds: cheap, to catch the bridge
// early in a stream of rows.
func (e *outboxEnv) count(t testing.TB) uint64 {
	t.Helper()
	s, err := e.reader.JS.Stream(context.Background(), streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// waitStored waits until every id is in EVENTS, then checks each is
// there once.
func (e *outboxEnv) waitStored(t testing.TB, ids ...string) map[string]int {
	t.Helper()
	var n map[string]int
	heraldtest.Eventually(t, 30*time.Second, fmt.Sprintf("%d events in EVENTS", len(ids)), func() bool {
		n, _ = e.stored(t)
		for _, id := range ids {
			if n[id] == 0 {
				return false
			}
		}
		return true
	})
	for _, id := range ids {
		if n[id] != 1 {
			t.Errorf("event %s stored %d times", id, n[id])
		}
	}
	return n
}

func bridgeMetric(t testing.TB, a *apptest.App, bridge, result string) float64 {
	t.Helper()
	return a.Metric(t, fmt.Sprintf(`herald_bridge_messages_total{bridge=%q,kind="event",result=%q}`, bridge, result))
}

// TestOutbox runs against one PostgreSQL and one event log; each case has
// its own outbox table and bridge, and they run one after the other (a
// transaction held open in one would hold back the others' reads).
func TestOutbox(t *testing.T) {
	e := startOutboxEnv(t)
	t.Run("CommittedRowsAreForwardedOnceEachInCommitOrder", e.testCommitted)
	t.Run("ARolledBackTransactionForwardsNothing", e.testRolledBack)
	t.Run("ATransactionCommittingLateIsNotSkipped", e.testOutOfOrder)
	t.Run("ARestartMidForwardingLeavesNoGapAndNoDuplicate", e.testRestart)
	t.Run("RefusedRowsGoToTheRejectedTableAndLaterRowsFlow", e.testRejected)
	t.Run("TwoBridgesOfOneNameForwardEachRowOnce", e.testTwoBridges)
	t.Run("ADatabaseThatDoesNotAnswerStopsTheStart", e.testNoDatabase)
}

// The bridge creates its tables when it starts: a database that does not
// answer then stops the start, and says which.
func (e *outboxEnv) testNoDatabase(t *testing.T) {
	yaml := strings.Replace(e.bridgeYAML("nodb", "nodb_outbox", ""), e.pg.DSN, "postgres://u:secret@127.0.0.1:1/none?connect_timeout=5", 1)
	a, err := app.New(app.Options{ConfigYAML: yaml, Targets: []string{app.Bridge}, DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0",
		NATSURL: e.srv.ClientURL(), NATSCredsDir: e.srv.CredsDir, Logger: heraldtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = a.Start(ctx)
	if err == nil {
		_ = a.Stop(ctx)
		t.Fatal("the bridge started without its database")
	}
	if !strings.Contains(err.Error(), "nodb_outbox") || !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "secret") {
		t.Errorf("start error %v: want the table and the database, without the password", err)
	}
	t.Logf("start error: %v", err)
	_ = a.Stop(ctx)
}

// Two processes run the same bridge: the one that holds its offsets row
// reads, the other waits for it; between them each row goes once, in order.
func (e *outboxEnv) testTwoBridges(t *testing.T) {
	const table, n = "pair_outbox", 100
	yaml := e.bridgeYAML("pair", table, "")
	first, second := e.startBridge(t, yaml), e.startBridge(t, yaml)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("pair-%03d", i)
		e.commit(t, table, rowOf(call(ids[i])))
	}
	e.waitStored(t, ids...)
	_, order := e.stored(t)
	var mine []string
	for _, id := range order {
		if strings.HasPrefix(id, "pair-") {
			mine = append(mine, id)
		}
	}
	if strings.Join(mine, " ") != strings.Join(ids, " ") {
		t.Errorf("EVENTS holds the rows out of order: %v", mine)
	}
	t.Logf("rows forwarded: %v by one process, %v by the other; duplicates %v",
		bridgeMetric(t, first, "pair", "forwarded"), bridgeMetric(t, second, "pair", "forwarded"),
		bridgeMetric(t, first, "pair", "duplicate")+bridgeMetric(t, second, "pair", "duplicate"))
}

func (e *outboxEnv) testCommitted(t *testing.T) {
	a := e.startBridge(t, e.bridgeYAML("committed", "committed_outbox", ""))
	batch := rowOf(`[` + call("c-2") + `,` + call("c-3") + `]`)
	noID := rowOf(call(""))
	e.commit(t, "committed_outbox", rowOf(call("c-1")))
	e.commit(t, "committed_outbox", batch, noID)
	e.commit(t, "committed_outbox", rowOf(call("c-4")))
	// An event without an id takes its row's uuid: read again, it is the
	// same event.
	ids := []string{"c-1", "c-2", "c-3", noID.uuid, "c-4"}
	e.waitStored(t, ids...)
	_, order := e.stored(t)
	if got := strings.Join(order, " "); got != strings.Join(ids, " ") {
		t.Errorf("EVENTS order %s, want %s", got, ids)
	}
	var orders int
	if err := e.db.QueryRow(`SELECT count(*) FROM orders WHERE note = ANY($1)`, []string{batch.uuid, noID.uuid}).Scan(&orders); err != nil || orders != 2 {
		t.Errorf("business rows %d (%v), want 2", orders, err)
	}
	heraldtest.Eventually(t, 10*time.Second, "the rows counted", func() bool { return bridgeMetric(t, a, "committed", "forwarded") == 4 })
	if r := a.Do(t, "GET", "/readyz", nil); r.Status != 200 || !strings.Contains(string(r.Body), "bridge:committed") {
		t.Errorf("readyz %d %s", r.Status, r.Body)
	}
}

func (e *outboxEnv) testRolledBack(t *testing.T) {
	e.startBridge(t, e.bridgeYAML("rolledback", "rolledback_outbox", ""))
	tx := e.begin(t)
	insert(t, tx, "rolledback_outbox", rowOf(call("rb-gone")))
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// Committed after the rolled-back one: once it is in EVENTS, the
	// bridge has read past where the other would be.
	e.commit(t, "rolledback_outbox", rowOf(call("rb-sentinel")))
	n := e.waitStored(t, "rb-sentinel")
	if n["rb-gone"] != 0 {
		t.Errorf("the rolled-back event was forwarded %d times", n["rb-gone"])
	}
}

// scans is how many times the bridge has read the table (PostgreSQL's
// statistics, which a backend reports when it goes idle, about each
// second).
func (e *outboxEnv) scans(t testing.TB, table string) int64 {
	t.Helper()
	var n int64
	if err := e.db.QueryRow(`SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = $1`, table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The first transaction to insert commits last: its row has the lower
// transaction id, and must not be skipped by a bridge that has read the
// second one already.
func (e *outboxEnv) testOutOfOrder(t *testing.T) {
	const table = "late_outbox"
	e.startBridge(t, e.bridgeYAML("late", table, ""))
	first, second := e.begin(t), e.begin(t)
	insert(t, first, table, rowOf(call("late-first")))
	insert(t, second, table, rowOf(call("late-second")))
	if err := second.Commit(); err != nil {
		t.Fatal(err)
	}
	// The bridge reads the table twice more with the second committed and
	// the first still open: it holds the second back rather than pass the
	// first's place.
	before := e.scans(t, table)
	heraldtest.Eventually(t, 30*time.Second, "the bridge to read the outbox again", func() bool { return e.scans(t, table) >= before+2 })
	if n, _ := e.stored(t); n["late-second"] != 0 {
		t.Errorf("the second transaction's row was forwarded before the first committed")
	}
	if err := first.Commit(); err != nil {
		t.Fatal(err)
	}
	e.waitStored(t, "late-first", "late-second")
	_, order := e.stored(t)
	if i, j := index(order, "late-first"), index(order, "late-second"); i > j {
		t.Errorf("late-first at %d, late-second at %d: want transaction order", i, j)
	}
}

func index(ids []string, id string) int {
	for i, x := range ids {
		if x == id {
			return i
		}
	}
	return -1
}

// The bridge goes away while it forwards N rows: stopped (as SIGTERM
// does) and started again, or its database connections killed under it.
// Every row ends up in EVENTS once; JetStream's de-duplication takes the
// rows of the batch in hand that are read again.
func (e *outboxEnv) testRestart(t *testing.T) {
	const n = 300
	for _, c := range []struct {
		name, bridge string
		// interrupt breaks the bridge off and returns the one that goes on.
		interrupt func(t *testing.T, a *apptest.App, yaml string) *apptest.App
	}{
		{"stopped", "restart_stopped", func(t *testing.T, a *apptest.App, yaml string) *apptest.App {
			a.Stop(t)
			return e.startBridge(t, yaml)
		}},
		{"connection killed", "restart_killed", func(t *testing.T, a *apptest.App, _ string) *apptest.App {
			var killed int
			err := e.db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE datname = current_database() AND application_name <> 'producer' AND pid <> pg_backend_pid()`).Scan(&killed)
			if err != nil || killed == 0 {
				t.Fatalf("killed %d bridge connections (%v)", killed, err)
			}
			return a
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := c.bridge
			table := name + "_outbox"
			yaml := e.bridgeYAML(name, table, "")
			a := e.startBridge(t, yaml)
			ids := make([]string, n)
			rows := make([]row, n)
			for i := range ids {
				ids[i] = fmt.Sprintf("%s-%03d", name, i)
				rows[i] = rowOf(call(ids[i]))
			}
			// Committed in transactions of ten, as producers would.
			for i := 0; i < n; i += 10 {
				e.commit(t, table, rows[i:i+10]...)
			}
			var at uint64
			before := e.count(t)
			heraldtest.Eventually(t, 30*time.Second, "some rows forwarded", func() bool {
				at = e.count(t) - before
				return at >= 5
			})
			a = c.interrupt(t, a, yaml)
			t.Logf("%s after %d of %d rows", c.name, at, n)
			e.waitStored(t, ids...)
			t.Logf("JetStream de-duplicated %v rows read again", bridgeMetric(t, a, name, "duplicate"))
			_, order := e.stored(t)
			var mine []string
			for _, id := range order {
				if strings.HasPrefix(id, name+"-") {
					mine = append(mine, id)
				}
			}
			if strings.Join(mine, " ") != strings.Join(ids, " ") {
				t.Errorf("EVENTS holds the rows out of order or with gaps: %v", mine)
			}
		})
	}
}

func (e *outboxEnv) testRejected(t *testing.T) {
	const table = "refused_outbox"
	// The connection string from the environment, as production passes
	// its password.
	t.Setenv("HERALD_BRIDGE_REFUSED_DSN", e.pg.DSN)
	a := e.startBridge(t, strings.Replace(e.bridgeYAML("refused", table, ""), "dsn: "+e.pg.DSN, "dsn: postgres://nobody@127.0.0.1:1/none", 1))
	unknownField := rowOf(`{"id":"ref-bad","type":"integration_call_completed","source":"shop","colour":"red","data":{}}`)
	notJSONEvent := rowOf(`"just a string"`)
	null := row{uuid: uuid.NewString()}
	forbidden := rowOf(`{"id":"ref-forged","type":"otp_verified","source":"shop","data":{}}`)
	badData := rowOf(`{"id":"ref-nodata","type":"integration_call_completed","source":"shop","data":{"integration":1}}`)
	e.commit(t, table, rowOf(call("ref-before")), unknownField, notJSONEvent)
	tooLarge := rowOf(`{"id":"ref-large","type":"integration_call_completed","source":"shop","data":{"integration":"` + strings.Repeat("x", 1<<20) + `"}}`)
	e.commit(t, table, null, forbidden, badData, tooLarge, rowOf(call("ref-after")))
	n := e.waitStored(t, "ref-before", "ref-after")
	for _, id := range []string{"ref-bad", "ref-forged", "ref-nodata", "ref-large"} {
		if n[id] != 0 {
			t.Errorf("refused event %s stored", id)
		}
	}

	want := map[string]string{
		unknownField.uuid: "invalid_json", notJSONEvent.uuid: "invalid_json", null.uuid: "invalid_json",
		forbidden.uuid: "forbidden_event_type", badData.uuid: "schema_violation", tooLarge.uuid: "body_too_large",
	}
	rows, err := e.db.Query(`SELECT uuid, payload, metadata FROM ` + table + `_rejected ORDER BY "offset"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var id string
		var payload, metadata []byte
		if err := rows.Scan(&id, &payload, &metadata); err != nil {
			t.Fatal(err)
		}
		var md map[string]string
		if err := json.Unmarshal(metadata, &md); err != nil {
			t.Fatalf("metadata %s: %v", metadata, err)
		}
		got[id] = md["herald_code"]
		if !strings.HasPrefix(md["reason_poisoned"], md["herald_code"]+": ") {
			t.Errorf("row %s: reason %q", id, md["reason_poisoned"])
		}
		if id == forbidden.uuid && string(payload) != *forbidden.payload {
			t.Errorf("rejected payload %s, want the row's own", payload)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id, code := range want {
		if got[id] != code {
			t.Errorf("row %s: rejected with %q, want %q (rejected: %v)", id, got[id], code, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d rejected rows, want %d", len(got), len(want))
	}
	heraldtest.Eventually(t, 10*time.Second, "the rejections counted", func() bool { return bridgeMetric(t, a, "refused", "rejected") == 6 })
	// The last refused row was written by the transaction that moved the
	// offset past it (the second commit's rows are read together).
	heraldtest.Eventually(t, 10*time.Second, "the rejected row and the offset in one transaction", func() bool {
		var rejectedBy, offsetBy int64
		err := e.db.QueryRow(`SELECT (SELECT transaction_id::text::bigint % 4294967296 FROM `+table+`_rejected ORDER BY "offset" DESC LIMIT 1),
			(SELECT xmin::text::bigint FROM `+table+`_offsets WHERE consumer_group = 'refused')`).Scan(&rejectedBy, &offsetBy)
		if err != nil {
			t.Fatal(err)
		}
		return rejectedBy == offsetBy
	})
}

// A mistake in an outbox's configuration stops the start and names its key.
func TestOutboxConfigErrorsNameTheKey(t *testing.T) {
	t.Setenv("HERALD_BRIDGE_SHOP_DSN", "")
	for _, c := range []struct{ name, entry, want string }{
		{"no dsn", "", "bridge.outbox[0].dsn: none configured (set it, its file, or HERALD_BRIDGE_SHOP_DSN)"},
		{"dsn file missing", "dsnFile: /nonexistent/dsn", "bridge.outbox[0].dsnFile: open /nonexistent/dsn"},
		{"bad dsn", "dsn: 'postgres://u:secret@[::1'", "bridge.outbox[0].dsn: cannot parse"},
		{"table not an identifier", "dsn: postgres://u@h/db\n      table: 'orders; DROP TABLE orders'", "bridge.outbox[0].table: \"orders; DROP TABLE orders\" must be a PostgreSQL identifier"},
		{"table upper case", "dsn: postgres://u@h/db\n      table: Outbox", "bridge.outbox[0].table"},
		{"table too long", "dsn: postgres://u@h/db\n      table: " + strings.Repeat("t", 55), "bridge.outbox[0].table"},
		{"batch too large", "dsn: postgres://u@h/db\n      batchSize: 1000", "bridge.outbox[0].batchSize: 1000 must be 1 to 100"},
		{"negative poll interval", "dsn: postgres://u@h/db\n      pollInterval: -1s", "bridge.outbox[0].pollInterval"},
	} {
		t.Run(c.name, func(t *testing.T) {
			yaml := "bridge:\n  herald:\n    url: http://127.0.0.1:9\n  outbox:\n    - name: shop\n"
			if c.entry != "" {
				yaml += "      " + c.entry + "\n"
			}
			_, err := app.New(app.Options{ConfigYAML: yaml, Targets: []string{app.Bridge}, DataDir: t.TempDir(),
				NATSURL: "nats://127.0.0.1:1", HTTPAddr: "127.0.0.1:0", Logger: heraldtest.Logger(t)})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

// While the event log is away the outbox waits, and its rows then flow in
// order, each once: the bridge's connection waits for the server to be
// back (within the row's 30 s deadline; past it the row is handed back and
// read again from the unchanged position).
func TestOutboxWaitsInOrderWhileTheEventLogIsAway(t *testing.T) {
	const table = "away_outbox"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	store := t.TempDir()
	onAddr := func(c *bus.ServerConfig) { c.Listen, c.StoreDir = addr, store }
	e := startOutboxEnv(t, onAddr)
	a := e.startBridge(t, e.bridgeYAML("away", table, ""))
	e.commit(t, table, rowOf(call("away-0")))
	e.waitStored(t, "away-0")

	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	heraldtest.Eventually(t, 30*time.Second, "the bridge to be unready", func() bool { return a.Do(t, "GET", "/readyz", nil).Status == 503 })
	ids := []string{"away-1", "away-2", "away-3"}
	for _, id := range ids {
		e.commit(t, table, rowOf(call(id)))
	}
	heraldtest.Server(t, onAddr, func(c *bus.ServerConfig) { c.Auth = e.srv.Creds })
	e.waitStored(t, ids...)
	_, order := e.stored(t)
	if got := strings.Join(order, " "); got != "away-0 "+strings.Join(ids, " ") {
		t.Errorf("EVENTS order %s", got)
	}
	a.Stop(t) // before the second server's cleanup, which runs first
}
