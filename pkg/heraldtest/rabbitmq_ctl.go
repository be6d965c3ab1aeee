package heraldtest

import (
	"net/url"
	"os/exec"
	"strings"
	"testing"
)

// CloseConnections closes every client connection to r's vhost from the
// broker's side (rabbitmqctl close_all_connections), as a network cut or a
// broker restart does: what the clients had not acknowledged is delivered
// again.
func (r *RabbitMQ) CloseConnections(t testing.TB) {
	t.Helper()
	u, err := url.Parse(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	vhost := strings.TrimPrefix(u.Path, "/")
	if vhost == "" {
		vhost = "/"
	}
	cmd := exec.Command(rabbitmqctl, "-n", r.Node, "-q", "close_all_connections", "-p", vhost, "closed by the test")
	cmd.Dir, cmd.Env = r.Dir, r.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rabbitmqctl close_all_connections: %v\n%s", err, out)
	}
}
