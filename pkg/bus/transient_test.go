package bus_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/bus"
)

func TestWhatARetryCanCureIsTransient(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nats.ErrTimeout, true},
		{fmt.Errorf("publish: %w", nats.ErrNoResponders), true},
		{&jetstream.APIError{Code: http.StatusServiceUnavailable, ErrorCode: 10008}, true},
		// The first publish of this id is still being proposed.
		{&jetstream.APIError{Code: http.StatusConflict, ErrorCode: 10158, Description: "duplicate message id is in process"}, true},
		{&jetstream.APIError{Code: http.StatusBadRequest, ErrorCode: 10071, Description: "wrong last sequence"}, false},
		{fmt.Errorf("bad data"), false},
		{nil, false},
	}
	for _, tc := range tests {
		if got := bus.IsTransient(tc.err); got != tc.want {
			t.Errorf("IsTransient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
