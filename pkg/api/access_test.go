package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/pkg/api"
	"github.com/heraldhq/herald/pkg/config"
	"github.com/heraldhq/herald/pkg/heraldtest"
)

// echo answers 200 with the caller's name and what it may do.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c := api.CallerFrom(r.Context())
	name := "none"
	if c != nil {
		name = c.Name
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"caller": name, "shop": c.MayApp("shop"),
		"publish": c.MayPublish("integration_call_completed")})
})

func startServer(t *testing.T, keys *api.Keyring) string {
	t.Helper()
	return serve(t, keys, prometheus.NewRegistry(), []api.Route{
		{Pattern: "GET /public", Access: api.Public, Handler: echo},
		{Pattern: "GET /producer", Access: api.Producer, Handler: echo},
		{Pattern: "GET /operator", Access: api.Operator, Handler: echo},
		{Pattern: "GET /signed", Access: api.Signed, Handler: echo},
	})
}

// serve starts a server of routes on a random 127.0.0.1 port, stopped when
// the test ends, and returns its URL.
func serve(t *testing.T, keys *api.Keyring, reg *prometheus.Registry, routes []api.Route) string {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	s, err := api.NewServer(cfg, keys, heraldtest.Logger(t), reg, routes, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s.URL()
}

func TestARouteThatDeclaresNoAccessIsRefused(t *testing.T) {
	_, err := api.NewServer(api.DefaultConfig(), nil, heraldtest.Logger(t), prometheus.NewRegistry(),
		[]api.Route{{Pattern: "GET /forgotten", Handler: echo}}, nil)
	if err == nil || !strings.Contains(err.Error(), "GET /forgotten") || !strings.Contains(err.Error(), "declares no access") {
		t.Fatalf("err = %v", err)
	}
}

func TestKeysAreEnforcedByRouteAccess(t *testing.T) {
	shop := heraldtest.ProducerKey(t, "shop", []string{"shop"}, []string{"integration_call_completed"})
	other := heraldtest.ProducerKey(t, "other", []string{"bank"}, nil)
	ops := heraldtest.OperatorKey(t, "ops")
	keys, err := api.LoadKeyring(api.Config{Addr: "0.0.0.0:8080", Auth: api.AuthConfig{
		Keys: []api.KeyConfig{shop.Config, other.Config, ops.Config}}}, heraldtest.Catalog(t))
	if err != nil {
		t.Fatal(err)
	}
	url := startServer(t, keys)
	tests := []struct {
		name, path string
		header     []string
		status     int
		answer     string
	}{
		{"public without a key", "/public", nil, 200, `"caller":"none"`},
		{"signed without a key (the handler checks)", "/signed", nil, 200, `"caller":"none"`},
		{"producer without a key", "/producer", nil, 401, `"missing_credentials"`},
		{"producer with an empty bearer", "/producer", []string{"Authorization", "Bearer "}, 401, `"missing_credentials"`},
		{"producer with a wrong key", "/producer", []string{"Authorization", "Bearer " + shop.Secret + "x"}, 401, `"invalid_credentials"`},
		{"producer with the hash as key", "/producer", []string{"Authorization", "Bearer " + shop.Config.Hash}, 401, `"invalid_credentials"`},
		{"producer with its key", "/producer", shop.Bearer(), 200, `"caller":"shop","publish":true,"shop":true`},
		{"producer scoped elsewhere", "/producer", other.Bearer(), 200, `"caller":"other","publish":false,"shop":false`},
		{"producer with the operator key", "/producer", ops.Bearer(), 403, `key \"ops\" has the operator role; this route needs the producer role`},
		{"operator with a producer key", "/operator", shop.Bearer(), 403, `this route needs the operator role`},
		{"operator without a key", "/operator", nil, 401, `"missing_credentials"`},
		{"operator with its key", "/operator", ops.Bearer(), 200, `"caller":"ops","publish":false,"shop":false`},
		{"bearer scheme in lower case", "/operator", []string{"Authorization", "bearer " + ops.Secret}, 200, `"caller":"ops"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := heraldtest.Do(t, "GET", url+tt.path, nil, tt.header...)
			if r.Status != tt.status || !strings.Contains(string(r.Body), tt.answer) {
				t.Fatalf("%d %s, want %d with %s", r.Status, r.Body, tt.status, tt.answer)
			}
			if got := r.Header.Get("WWW-Authenticate"); (r.Status == 401) != strings.HasPrefix(got, "Bearer ") {
				t.Errorf("status %d with WWW-Authenticate %q", r.Status, got)
			}
		})
	}
}

func TestAServerWithoutKeysIsNotBuiltOffLoopback(t *testing.T) {
	cfg := api.DefaultConfig()
	cfg.Addr = "0.0.0.0:0"
	if _, err := api.NewServer(cfg, nil, heraldtest.Logger(t), prometheus.NewRegistry(), nil, nil); err == nil {
		t.Fatal("built")
	}
}

func TestWithoutKeysLoopbackIsOpen(t *testing.T) {
	keys, err := api.LoadKeyring(api.Config{Addr: "127.0.0.1:0"}, heraldtest.Catalog(t))
	if err != nil {
		t.Fatal(err)
	}
	url := startServer(t, keys)
	for _, path := range []string{"/producer", "/operator"} {
		r := heraldtest.Do(t, "GET", url+path, nil)
		if r.Status != 200 || !strings.Contains(string(r.Body), `"caller":"anonymous","publish":true,"shop":true`) {
			t.Errorf("%s: %d %s", path, r.Status, r.Body)
		}
	}
}

func TestAnExposedAddressNeedsKeys(t *testing.T) {
	ops := heraldtest.OperatorKey(t, "ops")
	for _, tt := range []struct {
		addr     string
		loopback bool
	}{
		{"127.0.0.1:8080", true}, {"127.0.0.2:8080", true}, {"[::1]:8080", true}, {"localhost:8080", true}, {"LOCALHOST:1", true},
		{":8080", false}, {"0.0.0.0:8080", false}, {"[::]:8080", false}, {"192.168.1.10:8080", false},
		{"herald.internal:8080", false}, {"127.0.0.1", false}, {"", false},
	} {
		t.Run(tt.addr, func(t *testing.T) {
			if got := api.IsLoopback(tt.addr); got != tt.loopback {
				t.Fatalf("IsLoopback = %v", got)
			}
			_, err := api.LoadKeyring(api.Config{Addr: tt.addr}, heraldtest.Catalog(t))
			if tt.loopback != (err == nil) {
				t.Fatalf("without keys: err = %v", err)
			}
			if err != nil && (!errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "herald keys new")) {
				t.Errorf("the refusal does not say how to add a key: %v", err)
			}
			if _, err := api.LoadKeyring(api.Config{Addr: tt.addr, Auth: api.AuthConfig{Keys: []api.KeyConfig{ops.Config}}}, heraldtest.Catalog(t)); err != nil {
				t.Errorf("with a key: %v", err)
			}
		})
	}
}

func TestKeyConfigErrorsNameTheKey(t *testing.T) {
	_, hash, err := api.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	_, hash2, err := api.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	key := func(name string, role api.Role, h string, apps, types []string) api.KeyConfig {
		return api.KeyConfig{Name: name, Role: role, Hash: h, Apps: apps, Types: types}
	}
	ok := key("fine", api.RoleOperator, hash, nil, nil)
	tests := []struct {
		name string
		keys []api.KeyConfig
		want string
	}{
		{"Herald-owned type", []api.KeyConfig{key("shop", api.RoleProducer, hash, nil, []string{"otp_verified"})}, `key "shop": types: otp_verified is published by Herald's dispatcher only`},
		{"unknown type", []api.KeyConfig{key("shop", api.RoleProducer, hash, nil, []string{"otp_teleported"})}, `key "shop": types: "otp_teleported" is not an event type`},
		{"key in clear", []api.KeyConfig{key("shop", api.RoleProducer, "hrld_abc", []string{"shop"}, nil)}, `key "shop": hash must be`},
		{"upper-case hex", []api.KeyConfig{key("shop", api.RoleProducer, strings.ToUpper(hash), []string{"shop"}, nil)}, `key "shop": hash must be`},
		{"no role", []api.KeyConfig{key("ops", "", hash, nil, nil)}, `key "ops": role "" is not producer or operator`},
		{"producer without scope", []api.KeyConfig{key("shop", api.RoleProducer, hash, nil, nil)}, `key "shop": a producer key needs apps`},
		{"operator with scope", []api.KeyConfig{key("ops", api.RoleOperator, hash, []string{"shop"}, nil)}, `key "ops": an operator key has no apps`},
		{"no name", []api.KeyConfig{key("", api.RoleOperator, hash, nil, nil)}, `keys[0]: name ""`},
		{"same name twice", []api.KeyConfig{ok, key("fine", api.RoleOperator, hash2, nil, nil)}, `key "fine" is configured twice`},
		{"same hash twice", []api.KeyConfig{ok, key("again", api.RoleOperator, hash, nil, nil)}, `key "again" has the same hash`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := api.LoadKeyring(api.Config{Addr: "127.0.0.1:8080", Auth: api.AuthConfig{Keys: tt.keys}}, heraldtest.Catalog(t))
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestKeysAreReadFromTheKeysFile(t *testing.T) {
	ops := heraldtest.OperatorKey(t, "ops")
	path := filepath.Join(t.TempDir(), "keys.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("keys:\n  - {name: ops, role: operator, hash: %q}\n", ops.Config.Hash))
	keys, err := api.LoadKeyring(api.Config{Addr: "0.0.0.0:1", Auth: api.AuthConfig{KeysFile: path}}, heraldtest.Catalog(t))
	if err != nil || keys.Len() != 1 {
		t.Fatalf("keys %d, err %v", keys.Len(), err)
	}
	write(fmt.Sprintf("keys:\n  - {name: ops, role: operator, hash: %q, secret: x}\n", ops.Config.Hash))
	if _, err := api.LoadKeyring(api.Config{Addr: "0.0.0.0:1", Auth: api.AuthConfig{KeysFile: path}}, heraldtest.Catalog(t)); err == nil ||
		!strings.Contains(err.Error(), `unknown key "secret"`) {
		t.Errorf("unknown field: %v", err)
	}
}

func TestHashKeyIsTheConfiguredDigest(t *testing.T) {
	key, hash, err := api.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "hrld_") || len(key) != len("hrld_")+43 || api.HashKey(key) != hash || !strings.HasPrefix(hash, "sha256:") {
		t.Errorf("key %q hash %q", key, hash)
	}
	if again, _, _ := api.NewKey(); again == key {
		t.Error("two keys are equal")
	}
}
