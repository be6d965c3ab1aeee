package slack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Headers of a signed request from Slack.
const (
	HeaderSignature = "X-Slack-Signature"
	HeaderTimestamp = "X-Slack-Request-Timestamp"
)

// MaxRequestAge is how far a request's timestamp may be from now: Slack's
// recommended window against replayed requests.
const MaxRequestAge = 5 * time.Minute

// Signature verification errors.
var (
	ErrUnsigned     = errors.New("request is not signed (no X-Slack-Signature or X-Slack-Request-Timestamp)")
	ErrBadSignature = errors.New("signature does not match the body")
	ErrStale        = errors.New("request timestamp is more than 5 minutes from now")
)

// Sign computes Slack's v0 signature of a request body sent at ts:
// "v0=" + hex(HMAC-SHA256(secret, "v0:" + ts + ":" + body)).
func Sign(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a request's v0 signature and that its timestamp is within
// MaxRequestAge of now. The comparison takes constant time.
func Verify(secret string, h http.Header, body []byte, now time.Time) error {
	sig, ts := h.Get(HeaderSignature), h.Get(HeaderTimestamp)
	if sig == "" || ts == "" {
		return ErrUnsigned
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	if age := now.Sub(time.Unix(sec, 0)); age > MaxRequestAge || age < -MaxRequestAge {
		return ErrStale
	}
	if !hmac.Equal([]byte(sig), []byte(Sign(secret, ts, body))) {
		return ErrBadSignature
	}
	return nil
}
