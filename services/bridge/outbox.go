package bridge

import (
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
)

// OutboxConfig is one PostgreSQL transactional outbox: a table producers
// insert their events into in the same transaction as their data. The
// bridge forwards each committed row once, in commit order (docs/bridges.md).
type OutboxConfig struct {
	Name string `yaml:"name"`
	// DSN is postgres://user@host:5432/db; with its password it comes from
	// HERALD_BRIDGE_<NAME>_DSN or DSNFile instead.
	DSN     string `yaml:"dsn"`
	DSNFile string `yaml:"dsnFile"`
	// Table is the outbox (default herald_outbox), created if missing, with
	// <table>_offsets (where the bridge is) and <table>_rejected (the rows
	// Herald refused, with the reason).
	Table string `yaml:"table"`
	// PollInterval is how often an idle outbox is read (default 1s): the
	// longest a committed row waits.
	PollInterval config.Duration `yaml:"pollInterval"`
	// BatchSize is how many rows one read takes (default 10, at most 100).
	// Their position is committed once the last is forwarded: a bridge that
	// dies in between forwards them again, which JetStream de-duplicates
	// within the EVENTS stream's duplicates window only.
	BatchSize int         `yaml:"batchSize"`
	Retry     RetryConfig `yaml:"retry"`

	// dsn is the resolved connection string (env, file or inline).
	dsn string
}

// tables are the outbox's own names: unquoted PostgreSQL identifiers that
// leave room for the _rejected suffix within the 63 bytes PostgreSQL keeps.
var tables = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,53}$`)

// ident quotes a checked table name.
func ident(table string) string { return `"` + table + `"` }

const (
	defaultOutboxTable = "herald_outbox"
	defaultBatchSize   = 10
	maxBatchSize       = 100
)

func (c *OutboxConfig) check() error {
	c.Retry.defaults()
	if c.Table == "" {
		c.Table = defaultOutboxTable
	}
	if !tables.MatchString(c.Table) {
		return fmt.Errorf("table: %q must be a PostgreSQL identifier of at most 54 lower case letters, digits and _ (starting with a letter or _)", c.Table)
	}
	if c.PollInterval == 0 {
		c.PollInterval = config.Duration(time.Second)
	}
	if c.PollInterval < 0 {
		return fmt.Errorf("pollInterval: %s must be positive", c.PollInterval.D())
	}
	switch {
	case c.BatchSize == 0:
		c.BatchSize = defaultBatchSize
	case c.BatchSize < 0 || c.BatchSize > maxBatchSize:
		return fmt.Errorf("batchSize: %d must be 1 to %d", c.BatchSize, maxBatchSize)
	}
	dsn, err := secret(c.Name, "DSN", c.DSN, c.DSNFile)
	if err != nil {
		key := "dsn"
		if c.DSNFile != "" {
			key = "dsnFile"
		}
		return fmt.Errorf("%s: %w", key, err)
	}
	// pgx redacts the password of a string it cannot parse.
	if _, err := pgx.ParseConfig(dsn); err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	c.dsn = dsn
	return nil
}

// rejectedCode is the metadata key of a rejected row's code (the reason,
// with the detail, is under watermill's reason_poisoned).
const rejectedCode = "herald_code"

// outbox forwards one outbox table's rows.
type outbox struct {
	cfg OutboxConfig
	d   *deps
}

// addOutbox puts the outbox on the router: watermill-sql's subscriber
// reads committed rows in (transaction id, offset) order below the oldest
// running transaction, so a transaction that commits late is not skipped;
// each row is forwarded as POST /v1/events would take it; what Herald
// refuses goes to <table>_rejected in the producer's database, in the
// transaction that moves the offset past it.
func addOutbox(r *message.Router, c OutboxConfig, d *deps) (source, error) {
	pc, err := pgx.ParseConfig(c.dsn)
	if err != nil {
		return source{}, fmt.Errorf("dsn: %w", err)
	}
	db := stdlib.OpenDB(*pc)
	// The subscriber holds one transaction at a time; a readiness check
	// and a reconnect need no more.
	db.SetMaxOpenConns(4)
	schema := func(table string) wsql.DefaultPostgreSQLSchema {
		return wsql.DefaultPostgreSQLSchema{
			GenerateMessagesTableName: func(string) string { return ident(table) },
			SubscribeBatchSize:        c.BatchSize,
		}
	}
	sub, err := wsql.NewSubscriber(wsql.BeginnerFromStdSQL(db), wsql.SubscriberConfig{
		ConsumerGroup:  c.Name,
		PollInterval:   c.PollInterval.D(),
		SchemaAdapter:  outboxSchema{DefaultPostgreSQLSchema: schema(c.Table), rejected: schema(c.Table + "_rejected")},
		OffsetsAdapter: wsql.DefaultPostgreSQLOffsetsAdapter{GenerateMessagesOffsetsTableName: func(string) string { return ident(c.Table + "_offsets") }},
		// The outbox, its offsets and its rejected rows, when the router
		// starts: PostgreSQL must answer then.
		InitializeSchema: true,
	}, d.wlog)
	if err != nil {
		return source{}, errors.Join(err, db.Close())
	}
	rejected := &rejectedRows{db: db, schema: schema(c.Table + "_rejected"), d: d}
	mw, err := d.middleware(c.Name, rejected, c.Table+"_rejected", c.Retry)
	if err != nil {
		return source{}, errors.Join(err, sub.Close(), db.Close())
	}
	o := &outbox{cfg: c, d: d}
	r.AddConsumerHandler("outbox:"+c.Name, c.Table, sub, o.handle).AddMiddleware(mw...)
	return source{
		name:  c.Name,
		ready: db.PingContext,
		close: func() error { return errors.Join(sub.Close(), db.Close()) },
	}, nil
}

// handle forwards one row: a CloudEvent in structured JSON, or an array
// of them. An event without an id takes the row's uuid (with its index in
// an array), so that a row read again publishes the same ids and JetStream
// stores each event once.
func (o *outbox) handle(msg *message.Message) error {
	start := time.Now()
	name := o.cfg.Name
	defer func() { o.d.metrics.duration.WithLabelValues(name, kindEvent).Observe(time.Since(start).Seconds()) }()
	err := o.forward(msg)
	var rej *Rejection
	switch {
	case errors.As(err, &rej):
		msg.Metadata.Set(rejectedCode, rej.Code)
		o.d.metrics.messages.WithLabelValues(name, kindEvent, resultRejected).Inc()
		o.d.log.Warn("outbox row rejected: to "+o.cfg.Table+"_rejected", "bridge", name, "row", msg.UUID, "code", rej.Code, "detail", rej.Detail)
		return err
	case err != nil && msg.Context().Err() != nil:
		// Stopping, or past the ack deadline: the row is read again.
		o.d.log.Info("outbox row left for later: it is read again", "bridge", name, "row", msg.UUID, "err", err)
		return err
	case err != nil:
		o.d.log.Warn("outbox row not forwarded yet: it and the rows after it wait", "bridge", name, "row", msg.UUID, "err", err)
		return err
	}
	return nil
}

func (o *outbox) forward(msg *message.Message) error {
	if err := checkSize(msg.Payload); err != nil {
		return err
	}
	ins, err := event.ParseInputs(msg.Payload)
	if err != nil {
		if r := inputRejection(err); IsRejection(r) {
			return r
		}
		return rejectf("invalid_json", "%v", err)
	}
	for i := range ins {
		if ins[i].ID != "" {
			continue
		}
		ins[i].ID = msg.UUID
		if len(ins) > 1 {
			ins[i].ID += "-" + strconv.Itoa(i)
		}
	}
	return o.d.forward(msg.Context(), o.cfg.Name, ins)
}

// outboxSchema is watermill-sql's PostgreSQL schema for the outbox that
// also creates <table>_rejected, of the same columns, with it.
type outboxSchema struct {
	wsql.DefaultPostgreSQLSchema
	rejected wsql.DefaultPostgreSQLSchema
}

func (s outboxSchema) SchemaInitializingQueries(p wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	qs, err := s.DefaultPostgreSQLSchema.SchemaInitializingQueries(p)
	if err != nil {
		return nil, err
	}
	// Its advisory lock again first: taken twice in one transaction, it
	// is held once.
	rs, err := s.rejected.SchemaInitializingQueries(p)
	return append(qs, rs...), err
}

// rejectedRows is the poison queue: <table>_rejected, written in the
// subscriber's transaction (the one that commits the offset past the row),
// so that a refused row is recorded exactly once, or not at all and read
// again.
type rejectedRows struct {
	db     *sql.DB
	schema wsql.DefaultPostgreSQLSchema
	d      *deps
}

func (p *rejectedRows) Publish(topic string, msgs ...*message.Message) error {
	var db wsql.ContextExecutor = wsql.BeginnerFromStdSQL(p.db)
	if len(msgs) > 0 {
		if tx, ok := wsql.TxFromContext(msgs[0].Context()); ok {
			db = tx
		}
	}
	pub, err := wsql.NewPublisher(db, wsql.PublisherConfig{SchemaAdapter: p.schema}, p.d.wlog)
	if err != nil {
		return err
	}
	return pub.Publish(topic, msgs...)
}

func (p *rejectedRows) Close() error { return nil }
