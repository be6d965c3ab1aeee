package heraldtest

import (
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/heraldhq/herald/pkg/api"
)

// Key is an HTTP API key minted for a test: the secret a client sends and
// the entry (with its hash only) the configuration holds.
type Key struct {
	Secret string
	Config api.KeyConfig
}

// Bearer is the header pair that sends the key, for Do's header list.
func (k Key) Bearer() []string { return []string{"Authorization", "Bearer " + k.Secret} }

// ProducerKey mints a producer key scoped to apps and event types.
func ProducerKey(t testing.TB, name string, apps, types []string) Key {
	t.Helper()
	return mint(t, api.KeyConfig{Name: name, Role: api.RoleProducer, Apps: apps, Types: types})
}

// OperatorKey mints an operator key.
func OperatorKey(t testing.TB, name string) Key {
	t.Helper()
	return mint(t, api.KeyConfig{Name: name, Role: api.RoleOperator})
}

func mint(t testing.TB, kc api.KeyConfig) Key {
	t.Helper()
	secret, hash, err := api.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	kc.Hash = hash
	return Key{Secret: secret, Config: kc}
}

// KeysYAML is an http section configuring keys, to put in herald.yaml.
func KeysYAML(t testing.TB, keys ...Key) string {
	t.Helper()
	var doc struct {
		HTTP struct {
			Auth api.AuthConfig `yaml:"auth"`
		} `yaml:"http"`
	}
	for _, k := range keys {
		doc.HTTP.Auth.Keys = append(doc.HTTP.Auth.Keys, k.Config)
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
