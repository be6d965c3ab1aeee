package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"

	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/event"
)

// Role is what an HTTP key may do.
type Role string

const (
	// RoleProducer sends and verifies OTPs for its apps and publishes its
	// event types.
	RoleProducer Role = "producer"
	// RoleOperator changes state (subscriptions, rebuilds) and reads
	// incidents and subscriptions.
	RoleOperator Role = "operator"
)

// AuthConfig is the http.auth section: the keys the API accepts. Only their
// SHA-256 digests are configured, never the keys themselves.
type AuthConfig struct {
	Keys []KeyConfig `yaml:"keys"`
	// KeysFile holds more keys, as a YAML document `keys: [...]` (so that
	// they can live in a secret mount rather than herald.yaml).
	KeysFile string `yaml:"keysFile" env:"HERALD_HTTP_KEYS_FILE"`
}

// KeyConfig is one key: `herald keys new` prints it.
type KeyConfig struct {
	Name string `yaml:"name"`
	Role Role   `yaml:"role"`
	// Hash is "sha256:" and the hex SHA-256 digest of the key.
	Hash string `yaml:"hash"`
	// Apps a producer key may send and verify OTPs for.
	Apps []string `yaml:"apps,omitempty"`
	// Types a producer key may publish on POST /v1/events; each must be a
	// producer-owned type of the catalog.
	Types []string `yaml:"types,omitempty"`
}

// keyPrefix starts every key: it makes a leaked key easy to recognise
// (secret scanners, logs) and tells it apart from other tokens.
const keyPrefix = "hrld_"

// HashPrefix starts a configured key digest.
const HashPrefix = "sha256:"

var (
	keyNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	hashPattern    = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// NewKey mints a key (32 random bytes) and returns it with the digest to
// configure. The key is shown once; Herald keeps only the digest.
func NewKey() (key, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("generate a key: %w", err)
	}
	key = keyPrefix + base64.RawURLEncoding.EncodeToString(b)
	return key, HashKey(key), nil
}

// HashKey is the digest configured for key. A plain SHA-256 suffices: keys
// are 256-bit random values, so there is nothing to brute-force, and a slow
// password hash (bcrypt, argon2) would cost tens of milliseconds on every
// request for no gain.
func HashKey(key string) string {
	d := sha256.Sum256([]byte(key))
	return HashPrefix + hex.EncodeToString(d[:])
}

// Keyring is the set of keys the API accepts. An empty keyring means no
// credentials are configured: allowed only on a loopback address.
type Keyring struct {
	keys []*Caller
}

// Len is the number of keys.
func (k *Keyring) Len() int {
	if k == nil {
		return 0
	}
	return len(k.keys)
}

// find returns the key's caller, comparing digests in constant time over
// every configured key.
func (k *Keyring) find(key string) *Caller {
	d := sha256.Sum256([]byte(key))
	var found *Caller
	for _, c := range k.keys {
		if subtle.ConstantTimeCompare(d[:], c.digest) == 1 {
			found = c
		}
	}
	return found
}

// LoadKeyring reads and checks the keys of cfg.Auth (inline and KeysFile)
// against the catalog, and refuses a listen address reachable from other
// hosts when no key is configured. Errors wrap config.ErrInvalid and name
// the key at fault.
func LoadKeyring(cfg Config, cat *event.Catalog) (*Keyring, error) {
	keys := slices.Clone(cfg.Auth.Keys)
	if cfg.Auth.KeysFile != "" {
		f, err := config.Load(cfg.Auth.KeysFile)
		if err != nil {
			return nil, fmt.Errorf("http.auth.keysFile: %w", err)
		}
		if err := f.CheckKnown("keys"); err != nil {
			return nil, fmt.Errorf("http.auth.keysFile: %w", err)
		}
		var more []KeyConfig
		if err := f.Section("keys", &more); err != nil {
			return nil, fmt.Errorf("http.auth.keysFile: %w", err)
		}
		keys = append(keys, more...)
	}
	kr := &Keyring{}
	names, hashes := map[string]bool{}, map[string]bool{}
	for i, kc := range keys {
		c, err := kc.caller(cat)
		if err != nil {
			who := fmt.Sprintf("keys[%d]", i)
			if kc.Name != "" {
				who = fmt.Sprintf("key %q", kc.Name)
			}
			return nil, fmt.Errorf("%w: http.auth: %s: %w", config.ErrInvalid, who, err)
		}
		if names[kc.Name] {
			return nil, fmt.Errorf("%w: http.auth: key %q is configured twice", config.ErrInvalid, kc.Name)
		}
		if hashes[kc.Hash] {
			return nil, fmt.Errorf("%w: http.auth: key %q has the same hash as another key; mint one key per holder", config.ErrInvalid, kc.Name)
		}
		names[kc.Name], hashes[kc.Hash] = true, true
		kr.keys = append(kr.keys, c)
	}
	if kr.Len() == 0 && !IsLoopback(cfg.Addr) {
		return nil, fmt.Errorf("%w: http.addr %s is reachable from other hosts and no HTTP key is configured, "+
			"so anyone could send OTPs, publish events and change subscriptions; mint keys with "+
			"'herald keys new --role producer --apps APP --types TYPE' and 'herald keys new --role operator' "+
			"and add them under http.auth.keys (docs/security.md), or listen on 127.0.0.1",
			config.ErrInvalid, cfg.Addr)
	}
	return kr, nil
}

func (kc KeyConfig) caller(cat *event.Catalog) (*Caller, error) {
	if !keyNamePattern.MatchString(kc.Name) {
		return nil, fmt.Errorf("name %q must be 1-64 letters, digits, '.', '_' or '-'", kc.Name)
	}
	if !hashPattern.MatchString(kc.Hash) {
		return nil, errors.New("hash must be \"sha256:\" and 64 lower-case hex digits, as 'herald keys new' prints (never the key itself)")
	}
	digest, _ := hex.DecodeString(strings.TrimPrefix(kc.Hash, HashPrefix))
	c := &Caller{Name: kc.Name, Role: kc.Role, digest: digest, apps: map[string]bool{}, types: map[event.Type]bool{}}
	switch kc.Role {
	case RoleOperator:
		if len(kc.Apps) > 0 || len(kc.Types) > 0 {
			return nil, errors.New("an operator key has no apps or types (those scope producer keys)")
		}
	case RoleProducer:
		if len(kc.Apps) == 0 && len(kc.Types) == 0 {
			return nil, errors.New("a producer key needs apps (to send and verify OTPs) or types (to publish events), or both")
		}
		for _, a := range kc.Apps {
			if a == "" {
				return nil, errors.New("apps: an app name is empty")
			}
			c.apps[a] = true
		}
		for _, t := range kc.Types {
			if err := CheckProducerType(cat, t); err != nil {
				return nil, fmt.Errorf("types: %w", err)
			}
			c.types[event.Type(t)] = true
		}
	default:
		return nil, fmt.Errorf("role %q is not %s or %s", kc.Role, RoleProducer, RoleOperator)
	}
	return c, nil
}

// CheckProducerType tells whether producers may publish t: it must be a type
// of the catalog owned by the producer role.
func CheckProducerType(cat *event.Catalog, t string) error {
	d, err := cat.Def(event.Type(t))
	if err != nil {
		return fmt.Errorf("%q is not an event type", t)
	}
	if ie := cat.ProducerMay(d.Type); ie != nil {
		return errors.New(ie.Detail)
	}
	return nil
}

// CheckApps reports a producer key scoped to an app that is not configured.
func (k *Keyring) CheckApps(apps []string) error {
	for _, c := range k.keys {
		for a := range c.apps {
			if !slices.Contains(apps, a) {
				return fmt.Errorf("%w: http.auth: key %q: apps: no app %q is configured (apps: %s)",
					config.ErrInvalid, c.Name, a, strings.Join(apps, ", "))
			}
		}
	}
	return nil
}

// IsLoopback reports whether a listen address accepts connections from this
// host only: a loopback IP or "localhost". Anything else — an empty host
// (":8080"), 0.0.0.0, a LAN address or another name — counts as exposed.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
