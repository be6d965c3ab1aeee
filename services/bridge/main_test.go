package bridge_test

import (
	"os"
	"testing"

	"github.com/heraldhq/herald/pkg/heraldtest"
)

// rabbit is the RabbitMQ node this package's tests share, a vhost each.
var rabbit heraldtest.SharedRabbitMQ

func TestMain(m *testing.M) {
	code := m.Run()
	rabbit.Stop()
	os.Exit(code)
}
