package event

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
)

// The CloudEvents NATS protocol binding, binary content mode: every
// attribute is a header named ce-<attribute>, its value percent-encoded as
// the HTTP binding's section 3.1.3.2 prescribes (space, '"', '%' and every
// byte outside printable ASCII), and header names are matched without
// regard to case (a producer's client may canonicalise them, Ce-Id).

// needsEscape is the binding's set of bytes to percent-encode.
func needsEscape(c byte) bool { return c <= 0x20 || c >= 0x7f || c == '"' || c == '%' }

// EncodeHeaderValue percent-encodes an attribute value for its header.
func EncodeHeaderValue(s string) string {
	i := 0
	for i < len(s) && !needsEscape(s[i]) {
		i++
	}
	if i == len(s) {
		return s // the common case: nothing to encode, nothing allocated
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		if c := s[i]; needsEscape(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// DecodeHeaderValue reverses EncodeHeaderValue.
func DecodeHeaderValue(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
			return s, fmt.Errorf("%w: bad percent-encoding in %q", ErrMalformedEnvelope, s)
		}
		b.WriteByte(byte(unhex(s[i+1])<<4 | unhex(s[i+2])))
		i += 2
	}
	return b.String(), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// HeaderValue is a CloudEvents attribute's value read from NATS headers:
// the header found whatever the case of its name, percent-decoded. A value
// that does not decode is returned as stored.
func HeaderValue(h nats.Header, name string) string { return ReadHeaders(h).Get(name) }

// Headers reads the attributes of one message, as HeaderValue does. It
// looks at the names once: headers written as Herald writes them (ce-id,
// lower case) are read by exact lookups, so an absent optional attribute
// costs one map miss, not a scan of every name — this runs for every event
// a consumer or a rebuild reads.
type Headers struct {
	h         nats.Header
	canonical bool
}

// ReadHeaders prepares h for reading.
func ReadHeaders(h nats.Header) Headers {
	_, canonical := h[HeaderID]
	return Headers{h: h, canonical: canonical}
}

// Get is one attribute's value ("" when absent).
func (r Headers) Get(name string) string {
	v, ok := r.h[name]
	if !ok && !r.canonical {
		for k, vs := range r.h {
			if strings.EqualFold(k, name) {
				v, ok = vs, true
				break
			}
		}
	}
	if !ok || len(v) == 0 {
		return ""
	}
	d, err := DecodeHeaderValue(v[0])
	if err != nil {
		return v[0]
	}
	return d
}
