package bridge

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/config"
)

// Config is herald.yaml's bridge section: the producers' brokers the bridge
// target relays into Herald.
type Config struct {
	// Herald is where OTP send requests go: the dispatcher's HTTP API,
	// with a producer key, so that a send over a broker is exactly a
	// POST /v1/otp/send (validation, idempotency, limits, key scope).
	Herald HeraldConfig `yaml:"herald"`
	// AMQP are RabbitMQ queues bound to producers' exchanges (amqp.go).
	AMQP []AMQPConfig `yaml:"amqp"`
	// Outbox are PostgreSQL outbox tables (outbox.go).
	Outbox []OutboxConfig `yaml:"outbox"`
}

// HeraldConfig is how the bridge reaches the OTP API.
type HeraldConfig struct {
	// URL of Herald's HTTP API (default: this process's http.addr, which
	// serves it only when the dispatcher target runs here too).
	URL string `yaml:"url" env:"HERALD_BRIDGE_HERALD_URL"`
	// Own: URL is this process's API (none was configured).
	Own bool `yaml:"-"`
	// Key is the producer API key, from the environment or KeyFile; never
	// written in herald.yaml.
	Key     string `yaml:"-" env:"HERALD_BRIDGE_KEY"`
	KeyFile string `yaml:"keyFile" env:"HERALD_BRIDGE_KEY_FILE"`
	// Timeout bounds one send, which waits for the provider (default 35s,
	// above the API's own wait).
	Timeout config.Duration `yaml:"timeout"`
}

// RetryConfig is the backoff of what may pass (Herald or the event log
// unavailable): the message is tried again in place MaxRetries times, then
// handed back to its broker, which delivers it again later. What Herald
// refuses is never retried.
type RetryConfig struct {
	MaxRetries int             `yaml:"maxRetries"`
	Initial    config.Duration `yaml:"initial"`
	Max        config.Duration `yaml:"max"`
}

// names are the bridges' names: they label metrics and log lines, name
// consumer groups and queues, and form environment variable names.
var names = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// LoadConfig reads the bridge section and checks it; an error names the
// key at fault. http is the process's own HTTP section (the default URL).
func LoadConfig(f *config.File, http api.Config) (Config, error) {
	c := Config{Herald: HeraldConfig{Timeout: config.Duration(35 * time.Second)}}
	if err := f.Section("bridge", &c); err != nil {
		return c, err
	}
	if err := c.check(http); err != nil {
		return c, fmt.Errorf("%w: bridge.%w", config.ErrInvalid, err)
	}
	return c, nil
}

func (c *Config) check(http api.Config) error {
	if len(c.AMQP)+len(c.Outbox) == 0 {
		return errors.New("amqp, outbox: the bridge target needs at least one bridge configured")
	}
	if c.Herald.URL == "" {
		c.Herald.URL, c.Herald.Own = ownURL(http.Addr), true
	}
	if c.Herald.Key == "" && c.Herald.KeyFile != "" {
		k, err := readSecret(c.Herald.KeyFile)
		if err != nil {
			return fmt.Errorf("herald.keyFile: %w", err)
		}
		c.Herald.Key = k
	}
	seen := map[string]string{}
	name := func(kind string, i int, n string) error {
		if !names.MatchString(n) {
			return fmt.Errorf("%s[%d].name: %q must be lower case letters, digits, - and _ (starting with a letter)", kind, i, n)
		}
		if other, dup := seen[n]; dup {
			return fmt.Errorf("%s[%d].name: %q is also the name of %s", kind, i, n, other)
		}
		seen[n] = fmt.Sprintf("%s[%d]", kind, i)
		return nil
	}
	for i := range c.AMQP {
		if err := name("amqp", i, c.AMQP[i].Name); err != nil {
			return err
		}
		if err := c.AMQP[i].check(); err != nil {
			return fmt.Errorf("amqp[%d].%w", i, err)
		}
	}
	for i := range c.Outbox {
		if err := name("outbox", i, c.Outbox[i].Name); err != nil {
			return err
		}
		if err := c.Outbox[i].check(); err != nil {
			return fmt.Errorf("outbox[%d].%w", i, err)
		}
	}
	return nil
}

// ownURL is the HTTP API of this process: its listen address, with a
// wildcard host reached on loopback.
func ownURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// secret is a broker's connection string: HERALD_BRIDGE_<NAME>_<KEY> in the
// environment, else the file, else the inline value (which should then
// carry no password).
func secret(bridge, key, inline, file string) (string, error) {
	env := "HERALD_BRIDGE_" + strings.ToUpper(strings.NewReplacer("-", "_").Replace(bridge)) + "_" + key
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	if file != "" {
		return readSecret(file)
	}
	if inline == "" {
		return "", fmt.Errorf("none configured (set it, its file, or %s)", env)
	}
	return inline, nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

func (r *RetryConfig) defaults() {
	if r.MaxRetries == 0 {
		r.MaxRetries = 5
	}
	if r.Initial == 0 {
		r.Initial = config.Duration(100 * time.Millisecond)
	}
	if r.Max == 0 {
		r.Max = config.Duration(5 * time.Second)
	}
}
