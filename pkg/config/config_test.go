package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/config"
)

type section struct {
	Addr    string          `yaml:"addr" env:"TEST_ADDR"`
	Timeout config.Duration `yaml:"timeout"`
	Size    config.Bytes    `yaml:"size"`
	Apps    map[string]app  `yaml:"apps"`
}

type app struct {
	Policy string `yaml:"deliveryPolicy"`
}

func (s *section) Validate() error {
	for name, a := range s.Apps {
		if a.Policy != "dlt_only" && a.Policy != "quick_only" {
			return errors.New("apps." + name + ".deliveryPolicy: must be dlt_only or quick_only")
		}
	}
	return nil
}

func TestSectionDecodesOverDefaultsAndTheEnvironmentWins(t *testing.T) {
	f, err := config.Parse("herald.yaml", []byte("svc:\n  timeout: 90s\n  size: 64KiB\n  apps:\n    shop: {deliveryPolicy: dlt_only}\n"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_ADDR", "0.0.0.0:1")
	s := section{Addr: "default", Timeout: config.Duration(time.Second)}
	if err := f.Section("svc", &s); err != nil {
		t.Fatal(err)
	}
	if s.Addr != "0.0.0.0:1" || s.Timeout.D() != 90*time.Second || s.Size != 64<<10 || s.Apps["shop"].Policy != "dlt_only" {
		t.Errorf("got %+v", s)
	}
}

func TestConfigErrorsNameTheKeyAndLine(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "svc:\n  adr: x\n", `line 2: svc: unknown key "adr"`},
		{"nested unknown key", "svc:\n  apps:\n    shop:\n      policy: x\n", `line 4: svc.apps.shop: unknown key "policy"`},
		{"bad duration", "svc:\n  timeout: soon\n", `line 2: "soon" is not a duration`},
		{"bad size", "svc:\n  size: big\n", `"big" is not a size`},
		{"validation", "svc:\n  apps:\n    shop: {deliveryPolicy: carrier_pigeon}\n", "svc.apps.shop.deliveryPolicy: must be"},
		{"not a mapping", "- a\n", "top level must be a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := config.Parse("herald.yaml", []byte(tt.yaml))
			if err == nil {
				err = f.Section("svc", &section{})
			}
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want ErrInvalid mentioning %q", err, tt.want)
			}
		})
	}
}

func TestUnknownSectionsAreReported(t *testing.T) {
	f, err := config.Parse("herald.yaml", []byte("http: {}\nhttpp: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.CheckKnown("http", "nats"); err == nil || !strings.Contains(err.Error(), "httpp (line 2)") {
		t.Errorf("got %v", err)
	}
}
