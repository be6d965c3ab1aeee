package retryafter_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/retryafter"
)

func TestRetryAfterReadsSecondsAndDates(t *testing.T) {
	const def = 7 * time.Second
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", def}, {"2", 2 * time.Second}, {"1.5", 1500 * time.Millisecond}, {"soon", def}, {"-1", def},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0},
	}
	for _, tc := range tests {
		h := http.Header{}
		if tc.header != "" {
			h.Set("Retry-After", tc.header)
		}
		if got := retryafter.Parse(h, def); got != tc.want {
			t.Errorf("Retry-After %q: %v, want %v", tc.header, got, tc.want)
		}
	}
	h := http.Header{"Retry-After": {time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)}}
	if got := retryafter.Parse(h, def); got < 58*time.Second || got > time.Minute {
		t.Errorf("a date a minute ahead: %v", got)
	}
}
