package otp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
)

// KeyFile is the generated key file's name under the data dir.
const KeyFile = "otp-keys.json"

// Keys seal codes for the adapter and hash them for storage. A code is
// never stored or published in clear: the store keeps HMAC-SHA256(hashKey,
// requestId ":" code) and the dispatch events carry AES-256-GCM(sealKey,
// code) with the requestId as additional data, so a sealed code copied into
// another request does not open.
type Keys struct {
	aead    cipher.AEAD
	hashKey []byte
	// Generated is true when the keys came from the generated key file.
	Generated bool
}

type keyFile struct {
	SealKey string `json:"sealKey"`
	HashKey string `json:"hashKey"`
}

// LoadKeys uses the configured keys (base64); a missing one comes from
// dataDir/otp-keys.json, created with fresh random keys (mode 0600) on first
// use. Separate processes must share the keys: configure them (OTP_SEAL_KEY,
// OTP_HASH_KEY) or share the data dir.
func LoadKeys(sealB64, hashB64, dataDir string) (*Keys, error) {
	k := &Keys{}
	var seal, hash []byte
	var err error
	if sealB64 != "" {
		if seal, err = decodeKey(sealB64); err != nil || len(seal) != 32 {
			return nil, fmt.Errorf("sealKey (OTP_SEAL_KEY): must be 32 bytes in base64")
		}
	}
	if hashB64 != "" {
		if hash, err = decodeKey(hashB64); err != nil || len(hash) < 32 {
			return nil, fmt.Errorf("hashKey (OTP_HASH_KEY): must be at least 32 bytes in base64")
		}
	}
	if seal == nil || hash == nil {
		kf, err := loadOrCreateKeyFile(filepath.Join(dataDir, KeyFile))
		if err != nil {
			return nil, err
		}
		k.Generated = true
		if seal == nil {
			seal = kf[0]
		}
		if hash == nil {
			hash = kf[1]
		}
	}
	block, err := aes.NewCipher(seal)
	if err != nil {
		return nil, err
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	k.hashKey = hash
	return k, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

func loadOrCreateKeyFile(path string) ([2][]byte, error) {
	var out [2][]byte
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKeyFile(path)
	}
	if err != nil {
		return out, err
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return out, fmt.Errorf("%s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return out, fmt.Errorf("%s: %w", path, err)
	}
	if out[0], err = decodeKey(kf.SealKey); err != nil || len(out[0]) != 32 {
		return out, fmt.Errorf("%s: sealKey is not 32 bytes of base64", path)
	}
	if out[1], err = decodeKey(kf.HashKey); err != nil || len(out[1]) < 32 {
		return out, fmt.Errorf("%s: hashKey is not 32 bytes of base64", path)
	}
	return out, nil
}

func createKeyFile(path string) ([2][]byte, error) {
	out := [2][]byte{make([]byte, 32), make([]byte, 32)}
	_, _ = rand.Read(out[0])
	_, _ = rand.Read(out[1])
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return out, err
	}
	b, _ := json.Marshal(keyFile{SealKey: base64.StdEncoding.EncodeToString(out[0]), HashKey: base64.StdEncoding.EncodeToString(out[1])})
	// O_EXCL: two processes starting on one data dir cannot both write keys.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadOrCreateKeyFile(path)
	}
	if err != nil {
		return out, err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return out, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return out, err
	}
	return out, f.Close()
}

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

// Hash is the stored form of a code: HMAC-SHA256 over requestId and code.
func (k *Keys) Hash(requestID, code string) []byte {
	m := hmac.New(sha256.New, k.hashKey)
	m.Write([]byte(requestID))
	m.Write([]byte{':'})
	m.Write([]byte(code))
	return m.Sum(nil)
}

// Match compares a presented code with a stored hash in constant time.
func (k *Keys) Match(requestID, code string, hash []byte) bool {
	return hmac.Equal(k.Hash(requestID, code), hash)
}

// Keyed returns an HMAC of s, for keys that must not reveal what they
// index (a phone number's rate limit, an idempotency key).
func (k *Keys) Keyed(s string) string {
	m := hmac.New(sha256.New, k.hashKey)
	m.Write([]byte("key:"))
	m.Write([]byte(s))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:24])
}

// ErrSeal reports a sealed code that does not open with this key and request.
var ErrSeal = errors.New("sealed code does not open (wrong key or request)")

// Seal encrypts a code for the provider adapter, bound to its request.
func (k *Keys) Seal(requestID, code string) string {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(code)+k.aead.Overhead())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(k.aead.Seal(nonce, nonce, []byte(code), []byte(requestID)))
}

// Open decrypts a sealed code.
func (k *Keys) Open(requestID, sealed string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(b) < k.aead.NonceSize()+k.aead.Overhead() {
		return "", ErrSeal
	}
	ns := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, b[:ns], b[ns:], []byte(requestID))
	if err != nil {
		return "", ErrSeal
	}
	return string(plain), nil
}
