// Package retryafter reads HTTP's Retry-After header (RFC 9110, 10.2.3):
// delay-seconds or an HTTP date. Slack, PagerDuty and Herald itself send
// it with their 429s; every client of theirs reads it here.
package retryafter

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Parse is the wait h asks for, or def when it asks for none (absent or
// unreadable). A date in the past is no wait.
func Parse(h http.Header, def time.Duration) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return def
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return def
}
