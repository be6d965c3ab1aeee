package otp

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
)

// Binding is what a sealed dispatch is bound to: the additional data of its
// AEAD seal. A seal copied into another request, app, leg index, provider or
// route does not open, so a dispatch cannot be re-targeted, re-routed or
// replayed as another leg.
type Binding struct {
	RequestID string
	App       string
	Leg       int
	Provider  string
	Route     string
}

// ErrSeal reports a sealed dispatch that does not open: another key, another
// binding, or altered bytes. Which one is deliberately not said.
var ErrSeal = errors.New("sealed dispatch does not open (unknown key id, or sealed for another request, app, leg or route)")

// sealContext versions the seal's format and additional data.
const sealContext = "herald/otp-dispatch/v2"

// aad is the additional data: the format, the key id and the binding, each
// length-prefixed so that no two bindings encode alike.
func (b Binding) aad(keyID string) []byte {
	out := make([]byte, 0, 24+len(keyID)+len(b.RequestID)+len(b.App)+len(b.Provider)+len(b.Route)+8)
	for _, s := range [...]string{sealContext, keyID, b.RequestID, b.App, b.Provider, b.Route} {
		out = binary.AppendUvarint(out, uint64(len(s)))
		out = append(out, s...)
	}
	return binary.AppendUvarint(out, uint64(b.Leg))
}

// Seal encrypts the destination phone and the code together for the
// provider adapter, bound to b, with the current seal key: "<key id>.<base64url
// of nonce, ciphertext and tag>". It is the only carrier of the full phone
// number and of the code.
func (k *Keys) Seal(b Binding, phone, code string) string {
	key := k.seal[0]
	ns := key.aead.NonceSize()
	// nonce | len(phone) phone code, sealed in place after the nonce.
	buf := make([]byte, ns, ns+1+len(phone)+len(code)+key.aead.Overhead())
	_, _ = rand.Read(buf)
	buf = append(buf, byte(len(phone)))
	buf = append(buf, phone...)
	buf = append(buf, code...)
	sealed := key.aead.Seal(buf[ns:ns], buf[:ns], buf[ns:], b.aad(key.id))
	enc := base64.RawURLEncoding
	out := make([]byte, 0, len(key.id)+1+enc.EncodedLen(ns+len(sealed)))
	out = append(append(out, key.id...), '.')
	return string(enc.AppendEncode(out, buf[:ns+len(sealed)]))
}

// Open decrypts a sealed dispatch with the key its id names, if b is what it
// was sealed for.
func (k *Keys) Open(b Binding, sealed string) (phone, code string, err error) {
	id, body, ok := strings.Cut(sealed, ".")
	if !ok {
		return "", "", ErrSeal
	}
	var key *sealKey
	for i := range k.seal {
		if k.seal[i].id == id {
			key = &k.seal[i]
			break
		}
	}
	if key == nil {
		return "", "", ErrSeal
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	ns := key.aead.NonceSize()
	if err != nil || len(raw) < ns+key.aead.Overhead()+1 {
		return "", "", ErrSeal
	}
	plain, err := key.aead.Open(raw[ns:ns], raw[:ns], raw[ns:], b.aad(id))
	if err != nil || len(plain) < 1 || int(plain[0]) > len(plain)-1 {
		return "", "", ErrSeal
	}
	n := int(plain[0])
	return string(plain[1 : 1+n]), string(plain[1+n:]), nil
}

// LegKey names a leg of a request: the dispatch id every event, ledger
// entry and seal of that leg derives from.
func LegKey(requestID string, leg int) string {
	return requestID + ".leg" + strconv.Itoa(leg)
}
