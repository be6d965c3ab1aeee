package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/app"
	"github.com/heraldhq/herald/services/herald/bench"
)

// The raw reference is only a reference if its publishes were stored: on a
// secure server, a role that may not publish the reference's events fails
// it, and the producer role, which may, completes it.
func TestTheRawReferenceFailsWhenTheServerRefusesItsPublishes(t *testing.T) {
	srv := heraldtest.StartSecureServer(t).ApplyStreams(t, app.ServiceStreamDefs()...)
	for _, tc := range []struct {
		role    access.Role
		refused bool
	}{
		{access.Producer, false},
		{access.OperatorRead, true},
	} {
		t.Run(string(tc.role), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r, err := bench.RawPublish(ctx, srv.As(t, tc.role), 200)
			switch {
			case tc.refused && err == nil:
				t.Fatalf("%s's refused publishes counted as a reference of %.0f msg/s", tc.role, r.Rate())
			case !tc.refused && err != nil:
				t.Fatalf("as %s: %v", tc.role, err)
			case !tc.refused && r.N != 200:
				t.Fatalf("as %s: %d messages, want 200", tc.role, r.N)
			}
		})
	}
}
