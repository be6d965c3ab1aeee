package bridge

import (
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/heraldhq/herald/pkg/config"
)

// OutboxConfig is one PostgreSQL transactional outbox: a table producers
// insert their events into in the same transaction as their data.
type OutboxConfig struct {
	Name string `yaml:"name"`
	// DSN is postgres://user@host:5432/db; with its password it comes from
	// HERALD_BRIDGE_<NAME>_DSN or DSNFile instead.
	DSN     string `yaml:"dsn"`
	DSNFile string `yaml:"dsnFile"`
	// Table is the outbox (default herald_outbox); rejected rows go to
	// <table>_rejected with the reason.
	Table string `yaml:"table"`
	// PollInterval is how often an idle outbox is read (default 1s).
	PollInterval config.Duration `yaml:"pollInterval"`
	Retry        RetryConfig     `yaml:"retry"`
}

func (c *OutboxConfig) check() error {
	c.Retry.defaults()
	return nil
}

func addOutbox(*message.Router, OutboxConfig, *deps) (source, error) {
	return source{}, errors.New("outbox: not built yet")
}
