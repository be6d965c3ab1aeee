// Package streams holds Herald's JetStream stream and key-value definitions as
// data (the YAML files of this folder, embedded), and applies them.
package streams

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/heraldhq/herald/pkg/config"
)

//go:embed *.yaml
var files embed.FS

// Well-known stream names.
const (
	Events        = "EVENTS"
	Incidents     = "INCIDENTS"
	Notifications = "NOTIFICATIONS"
	DLQ           = "DLQ"
)

// Def is one stream or key-value bucket.
type Def struct {
	Kind        string   `yaml:"kind"` // stream | kv
	Name        string   `yaml:"name"`
	Description string   `yaml:"description"`
	Subjects    []string `yaml:"subjects"`
	Retention   string   `yaml:"retention"` // limits | interest | workqueue
	Storage     string   `yaml:"storage"`   // file | memory

	MaxAge            config.Duration `yaml:"maxAge"`
	MaxBytes          config.Bytes    `yaml:"maxBytes"`
	MaxMsgSize        config.Bytes    `yaml:"maxMsgSize"`
	MaxMsgsPerSubject int64           `yaml:"maxMsgsPerSubject"`
	Duplicates        config.Duration `yaml:"duplicates"`
	Discard           string          `yaml:"discard"` // old | new
	AllowDirect       bool            `yaml:"allowDirect"`
	DenyDelete        bool            `yaml:"denyDelete"`
	DenyPurge         bool            `yaml:"denyPurge"`
	AllowMsgTTL       bool            `yaml:"allowMsgTTL"`
	// AllowMsgCounter makes every subject a counter (the Nats-Incr header
	// adds to it and the ack returns the sum): limits shared by processes.
	AllowMsgCounter bool `yaml:"allowMsgCounter"`

	// Key-value buckets.
	History        int             `yaml:"history"`
	TTL            config.Duration `yaml:"ttl"`
	LimitMarkerTTL config.Duration `yaml:"limitMarkerTTL"`
}

// Override changes a definition's retention from herald.yaml.
type Override struct {
	MaxAge   *config.Duration `yaml:"maxAge"`
	MaxBytes *config.Bytes    `yaml:"maxBytes"`
	// Duplicates is the Nats-Msg-Id de-duplication window: how long a
	// repeat of an event (a producer's retry, a bridge's redelivery after a
	// crash) is recognised. Longer costs the server memory per id.
	Duplicates *config.Duration `yaml:"duplicates"`
}

// Config is herald.yaml's streams section.
type Config struct {
	// Replicas is 1 on the embedded server, 3 on a cluster.
	Replicas  int                 `yaml:"replicas" env:"HERALD_STREAM_REPLICAS"`
	Overrides map[string]Override `yaml:"overrides"`
}

// Validate checks the section.
func (c *Config) Validate() error {
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("replicas: %d is not between 1 and 5", c.Replicas)
	}
	return nil
}

// DefaultConfig is one replica and the definitions' own retention.
func DefaultConfig() Config { return Config{Replicas: 1} }

// Load reads the embedded definitions, with any extra ones (from other
// packages, e.g. the OTP store) and the configuration's overrides applied.
func Load(cfg Config, extra ...fs.FS) ([]Def, error) {
	var defs []Def
	for _, fsys := range append([]fs.FS{files}, extra...) {
		names, err := fs.Glob(fsys, "*.yaml")
		if err != nil {
			return nil, err
		}
		slices.Sort(names)
		for _, name := range names {
			b, err := fs.ReadFile(fsys, name)
			if err != nil {
				return nil, err
			}
			var d Def
			dec := yaml.NewDecoder(strings.NewReader(string(b)))
			dec.KnownFields(true)
			if err := dec.Decode(&d); err != nil {
				return nil, fmt.Errorf("stream definition %s: %w", name, err)
			}
			if err := d.validate(); err != nil {
				return nil, fmt.Errorf("stream definition %s: %w", name, err)
			}
			defs = append(defs, d)
		}
	}
	seen := map[string]bool{}
	for i := range defs {
		if seen[defs[i].Name] {
			return nil, fmt.Errorf("stream %s is defined twice", defs[i].Name)
		}
		seen[defs[i].Name] = true
		if o, ok := cfg.Overrides[defs[i].Name]; ok {
			if o.MaxAge != nil {
				defs[i].MaxAge = *o.MaxAge
			}
			if o.MaxBytes != nil {
				defs[i].MaxBytes = *o.MaxBytes
			}
			if o.Duplicates != nil {
				defs[i].Duplicates = *o.Duplicates
			}
			if d := defs[i]; d.Duplicates < 0 || (d.MaxAge > 0 && d.Duplicates > d.MaxAge) {
				return nil, fmt.Errorf("%w: streams.overrides.%s.duplicates: %s must be between 0 and the stream's maxAge (%s)",
					config.ErrInvalid, d.Name, d.Duplicates.D(), d.MaxAge.D())
			}
		}
	}
	for name := range cfg.Overrides {
		if !seen[name] {
			return nil, fmt.Errorf("%w: streams.overrides.%s: no such stream", config.ErrInvalid, name)
		}
	}
	return defs, nil
}

func (d *Def) validate() error {
	if d.Name == "" {
		return errors.New("name is required")
	}
	switch d.Kind {
	case "stream":
		if len(d.Subjects) == 0 {
			return fmt.Errorf("%s: subjects are required", d.Name)
		}
		_, err := d.StreamConfig(1)
		return err
	case "kv":
		_, err := d.KeyValueConfig(1)
		return err
	}
	return fmt.Errorf("%s: kind %q is not stream or kv", d.Name, d.Kind)
}

// StreamConfig is the JetStream configuration of a stream definition.
func (d *Def) StreamConfig(replicas int) (jetstream.StreamConfig, error) {
	c := jetstream.StreamConfig{
		Name:              d.Name,
		Description:       d.Description,
		Subjects:          d.Subjects,
		MaxAge:            d.MaxAge.D(),
		MaxBytes:          int64(d.MaxBytes),
		MaxMsgs:           -1,
		MaxMsgsPerSubject: d.MaxMsgsPerSubject,
		MaxMsgSize:        int32(d.MaxMsgSize),
		Duplicates:        d.Duplicates.D(),
		AllowDirect:       d.AllowDirect,
		DenyDelete:        d.DenyDelete,
		DenyPurge:         d.DenyPurge,
		AllowMsgTTL:       d.AllowMsgTTL,
		AllowMsgCounter:   d.AllowMsgCounter,
		Replicas:          replicas,
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = -1
	}
	if c.MaxMsgsPerSubject == 0 {
		c.MaxMsgsPerSubject = -1
	}
	if c.MaxMsgSize == 0 {
		c.MaxMsgSize = -1
	}
	var err error
	if c.Retention, err = retention(d.Retention); err != nil {
		return c, fmt.Errorf("%s: %w", d.Name, err)
	}
	if c.Storage, err = storage(d.Storage); err != nil {
		return c, fmt.Errorf("%s: %w", d.Name, err)
	}
	switch d.Discard {
	case "", "old":
		c.Discard = jetstream.DiscardOld
	case "new":
		c.Discard = jetstream.DiscardNew
	default:
		return c, fmt.Errorf("%s: discard %q is not old or new", d.Name, d.Discard)
	}
	return c, nil
}

// KeyValueConfig is the JetStream configuration of a key-value definition.
func (d *Def) KeyValueConfig(replicas int) (jetstream.KeyValueConfig, error) {
	st, err := storage(d.Storage)
	if err != nil {
		return jetstream.KeyValueConfig{}, fmt.Errorf("%s: %w", d.Name, err)
	}
	history := d.History
	if history == 0 {
		history = 1
	}
	return jetstream.KeyValueConfig{
		Bucket:         d.Name,
		Description:    d.Description,
		History:        uint8(history),
		TTL:            d.TTL.D(),
		MaxBytes:       orUnlimited(int64(d.MaxBytes)),
		MaxValueSize:   int32(orUnlimited(int64(d.MaxMsgSize))),
		Storage:        st,
		Replicas:       replicas,
		LimitMarkerTTL: d.LimitMarkerTTL.D(),
	}, nil
}

func orUnlimited(v int64) int64 {
	if v == 0 {
		return -1
	}
	return v
}

func retention(s string) (jetstream.RetentionPolicy, error) {
	switch s {
	case "", "limits":
		return jetstream.LimitsPolicy, nil
	case "interest":
		return jetstream.InterestPolicy, nil
	case "workqueue":
		return jetstream.WorkQueuePolicy, nil
	}
	return 0, fmt.Errorf("retention %q is not limits, interest or workqueue", s)
}

func storage(s string) (jetstream.StorageType, error) {
	switch s {
	case "", "file":
		return jetstream.FileStorage, nil
	case "memory":
		return jetstream.MemoryStorage, nil
	}
	return 0, fmt.Errorf("storage %q is not file or memory", s)
}

// Result says what Apply did to one definition.
type Result struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Action string `json:"action"` // created | updated | unchanged
}

// Apply creates or updates every definition; it is idempotent.
func Apply(ctx context.Context, js jetstream.JetStream, defs []Def, replicas int) ([]Result, error) {
	out := make([]Result, 0, len(defs))
	for i := range defs {
		d := &defs[i]
		var (
			action string
			err    error
		)
		switch d.Kind {
		case "stream":
			action, err = applyStream(ctx, js, d, replicas)
		case "kv":
			action, err = applyKV(ctx, js, d, replicas)
		}
		if err != nil {
			return out, fmt.Errorf("apply %s %s: %w", d.Kind, d.Name, err)
		}
		out = append(out, Result{Name: d.Name, Kind: d.Kind, Action: action})
	}
	return out, nil
}

func applyStream(ctx context.Context, js jetstream.JetStream, d *Def, replicas int) (string, error) {
	want, err := d.StreamConfig(replicas)
	if err != nil {
		return "", err
	}
	s, err := js.Stream(ctx, d.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateStream(ctx, want); err != nil {
			return "", err
		}
		return "created", nil
	}
	if err != nil {
		return "", err
	}
	have := s.CachedInfo().Config
	if sameStream(have, want) {
		return "unchanged", nil
	}
	if _, err := js.UpdateStream(ctx, want); err != nil {
		return "", err
	}
	return "updated", nil
}

// sameStream compares the settings a definition controls.
func sameStream(a, b jetstream.StreamConfig) bool {
	pick := func(c jetstream.StreamConfig) []any {
		return []any{c.Description, c.Subjects, c.Retention, c.Storage, c.MaxAge, c.MaxBytes,
			c.MaxMsgsPerSubject, c.MaxMsgSize, c.Discard, c.AllowDirect, c.DenyDelete,
			c.DenyPurge, c.AllowMsgTTL, c.AllowMsgCounter, c.Replicas, dupWindow(c)}
	}
	return reflect.DeepEqual(pick(a), pick(b))
}

// dupWindow normalises an unset window to the server's default of 2 minutes.
func dupWindow(c jetstream.StreamConfig) time.Duration {
	if c.Duplicates == 0 {
		return 2 * time.Minute
	}
	return c.Duplicates
}

func applyKV(ctx context.Context, js jetstream.JetStream, d *Def, replicas int) (string, error) {
	want, err := d.KeyValueConfig(replicas)
	if err != nil {
		return "", err
	}
	kv, err := js.KeyValue(ctx, d.Name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		if _, err := js.CreateKeyValue(ctx, want); err != nil {
			return "", err
		}
		return "created", nil
	}
	if err != nil {
		return "", err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return "", err
	}
	if st.TTL() == want.TTL && st.History() == int64(want.History) {
		if info, ok := st.(*jetstream.KeyValueBucketStatus); ok && info.StreamInfo().Config.Replicas == replicas &&
			info.LimitMarkerTTL() == want.LimitMarkerTTL {
			return "unchanged", nil
		}
	}
	if _, err := js.UpdateKeyValue(ctx, want); err != nil {
		return "", err
	}
	return "updated", nil
}

// Dir is the folder dir of a service's embedded file system, for Load: a
// service embeds its own definitions (a key-value bucket, say) and hands
// them over with it.
func Dir(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		// fs.Sub fails only on an invalid path: a programming error.
		panic(fmt.Sprintf("streams: %q: %v", dir, err))
	}
	return sub
}
