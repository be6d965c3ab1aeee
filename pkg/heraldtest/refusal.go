package heraldtest

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/heraldhq/herald/pkg/access"
)

// RawConn is a plain NATS connection with a role's credentials that
// collects the server's asynchronous errors, to see what the server
// refuses: a publish or subscription it does not permit is answered with a
// permissions violation naming the subject.
type RawConn struct {
	*nats.Conn
	errs chan error
}

// DialAs connects to url with the role's credentials from credsDir, closed
// when the test ends.
func DialAs(t testing.TB, url, credsDir string, r access.Role) *RawConn {
	t.Helper()
	c := &RawConn{errs: make(chan error, 1024)}
	nc, err := nats.Connect(url, nats.UserCredentials(filepath.Join(credsDir, access.CredsFile(r))),
		nats.CustomInboxPrefix(access.InboxPrefix(r)), nats.Name(t.Name()+"-"+string(r)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { c.errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c.Conn = nc
	return c
}

// Refused waits for the server's permissions violation naming subject (the
// refusal of a publish or subscription on it); false if none comes within
// 10s. What is allowed is shown by its answer (an ack, a reply), never by
// the absence of an error.
func (c *RawConn) Refused(t testing.TB, subject string) bool {
	t.Helper()
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	want := `"` + subject + `"`
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), want) {
				return true
			}
		case <-timeout:
			return false
		}
	}
}
