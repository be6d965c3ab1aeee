package otp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/big"
)

// NewCode returns n random decimal digits from crypto/rand.
func NewCode(n int) (string, error) {
	b := make([]byte, n)
	ten := big.NewInt(10)
	for i := range b {
		d, err := rand.Int(rand.Reader, ten)
		if err != nil {
			return "", fmt.Errorf("otp: random source: %w", err)
		}
		b[i] = byte('0' + d.Int64())
	}
	return string(b), nil
}

func hashWith(secret []byte, requestID, code string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(requestID))
	m.Write([]byte{':'})
	m.Write([]byte(code))
	return m.Sum(nil)
}

// Hash is the stored form of a code, HMAC-SHA256 over requestId and code
// with the current hash key, and that key's id (stored with it).
func (k *Keys) Hash(requestID, code string) (keyID string, sum []byte) {
	return k.hash[0].id, hashWith(k.hash[0].secret, requestID, code)
}

// Match compares a presented code with a stored hash in constant time, with
// the key that made the hash ("" is key id "0": hashes stored before key ids).
// A key no longer in the ring matches nothing.
func (k *Keys) Match(requestID, code, keyID string, sum []byte) bool {
	if keyID == "" {
		keyID = DefaultKeyID
	}
	for _, h := range k.hash {
		if h.id == keyID {
			return hmac.Equal(hashWith(h.secret, requestID, code), sum)
		}
	}
	return false
}

// Keyed returns an HMAC of s with the current hash key, for keys that must
// not reveal what they index (a phone number's rate limit, an idempotency
// key). After a hash key rotation these indexes start afresh.
func (k *Keys) Keyed(s string) string {
	m := hmac.New(sha256.New, k.hash[0].secret)
	m.Write([]byte("key:"))
	m.Write([]byte(s))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:24])
}
