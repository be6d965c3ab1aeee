package otp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// KeyFile is the generated key file's name under the data dir.
const KeyFile = "otp-keys.json"

// DefaultKeyID is the id of a key given without one: the single-key forms
// of sealKey/hashKey (OTP_SEAL_KEY/OTP_HASH_KEY) and the key file written
// before keyrings existed.
const DefaultKeyID = "0"

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,16}$`)

// Keys seal dispatches for the adapter and hash codes for storage, each a
// keyring with ids so that keys rotate: the first key of a ring is the
// current one (new seals and hashes), the others still open and verify
// what was made with them. A sealed dispatch starts with its key id, a
// stored hash records its key id.
type Keys struct {
	seal []sealKey // current first
	hash []hashKey // current first
	// Generated is true when a keyring came from the generated key file.
	Generated bool
}

type sealKey struct {
	id   string
	aead cipher.AEAD
}

type hashKey struct {
	id     string
	secret []byte
}

// rawKey is one key as configured.
type rawKey struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

// keyFile is otp-keys.json: keyrings, current first. SealKey and HashKey are
// the single keys of the file's first format (read as key id "0").
type keyFile struct {
	SealKeys []rawKey `json:"sealKeys,omitempty"`
	HashKeys []rawKey `json:"hashKeys,omitempty"`
	SealKey  string   `json:"sealKey,omitempty"`
	HashKey  string   `json:"hashKey,omitempty"`
}

// LoadKeys uses the configured keyrings; a missing one comes from
// dataDir/otp-keys.json, created with fresh random keys (mode 0600) on first
// use. A keyring is one key in base64 (key id "0") or "id:base64,id:base64…",
// current first. Separate processes must share the keys: configure them
// (OTP_SEAL_KEY, OTP_HASH_KEY) or share the data dir.
func LoadKeys(sealRing, hashRing, dataDir string) (*Keys, error) {
	var seal, hash []rawKey
	var err error
	if sealRing != "" {
		if seal, err = parseRing(sealRing); err != nil {
			return nil, fmt.Errorf("sealKey (OTP_SEAL_KEY): %w", err)
		}
	}
	if hashRing != "" {
		if hash, err = parseRing(hashRing); err != nil {
			return nil, fmt.Errorf("hashKey (OTP_HASH_KEY): %w", err)
		}
	}
	k := &Keys{}
	if seal == nil || hash == nil {
		path := filepath.Join(dataDir, KeyFile)
		kf, err := loadOrCreateKeyFile(path)
		if err != nil {
			return nil, err
		}
		k.Generated = true
		if seal == nil {
			seal = kf.SealKeys
		}
		if hash == nil {
			hash = kf.HashKeys
		}
	}
	if k.seal, err = newSealRing(seal); err != nil {
		return nil, fmt.Errorf("sealKey (OTP_SEAL_KEY): %w", err)
	}
	if k.hash, err = newHashRing(hash); err != nil {
		return nil, fmt.Errorf("hashKey (OTP_HASH_KEY): %w", err)
	}
	return k, nil
}

// parseRing reads "base64" or "id:base64,id:base64…" (base64 has no ':').
func parseRing(s string) ([]rawKey, error) {
	if !strings.Contains(s, ":") {
		return []rawKey{{ID: DefaultKeyID, Key: strings.TrimSpace(s)}}, nil
	}
	var out []rawKey
	for _, part := range strings.Split(s, ",") {
		id, key, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, errors.New(`a keyring is "id:base64,id:base64…" (current key first)`)
		}
		out = append(out, rawKey{ID: id, Key: key})
	}
	return out, nil
}

func checkIDs(ring []rawKey) error {
	if len(ring) == 0 {
		return errors.New("no key")
	}
	seen := map[string]bool{}
	for _, r := range ring {
		if !keyIDPattern.MatchString(r.ID) {
			return fmt.Errorf("key id %q: 1 to 16 letters, digits, '-' or '_'", r.ID)
		}
		if seen[r.ID] {
			return fmt.Errorf("key id %q is listed twice", r.ID)
		}
		seen[r.ID] = true
	}
	return nil
}

func newSealRing(ring []rawKey) ([]sealKey, error) {
	if err := checkIDs(ring); err != nil {
		return nil, err
	}
	out := make([]sealKey, 0, len(ring))
	for _, r := range ring {
		b, err := decodeKey(r.Key)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("key %q: must be 32 bytes in base64", r.ID)
		}
		block, err := aes.NewCipher(b)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", r.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", r.ID, err)
		}
		out = append(out, sealKey{id: r.ID, aead: aead})
	}
	return out, nil
}

func newHashRing(ring []rawKey) ([]hashKey, error) {
	if err := checkIDs(ring); err != nil {
		return nil, err
	}
	out := make([]hashKey, 0, len(ring))
	for _, r := range ring {
		b, err := decodeKey(r.Key)
		if err != nil || len(b) < 32 {
			return nil, fmt.Errorf("key %q: must be at least 32 bytes in base64", r.ID)
		}
		out = append(out, hashKey{id: r.ID, secret: b})
	}
	return out, nil
}

// SealKeyID and HashKeyID are the ids of the current keys.
func (k *Keys) SealKeyID() string { return k.seal[0].id }
func (k *Keys) HashKeyID() string { return k.hash[0].id }

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

func loadOrCreateKeyFile(path string) (keyFile, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKeyFile(path)
	}
	if err != nil {
		return keyFile{}, err
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return keyFile{}, fmt.Errorf("%s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return keyFile{}, fmt.Errorf("%s: %w", path, err)
	}
	// The first format: one key each, which keeps its place as key id "0".
	if kf.SealKeys == nil && kf.SealKey != "" {
		kf.SealKeys = []rawKey{{ID: DefaultKeyID, Key: kf.SealKey}}
	}
	if kf.HashKeys == nil && kf.HashKey != "" {
		kf.HashKeys = []rawKey{{ID: DefaultKeyID, Key: kf.HashKey}}
	}
	if _, err := newSealRing(kf.SealKeys); err != nil {
		return keyFile{}, fmt.Errorf("%s: sealKeys: %w", path, err)
	}
	if _, err := newHashRing(kf.HashKeys); err != nil {
		return keyFile{}, fmt.Errorf("%s: hashKeys: %w", path, err)
	}
	return kf, nil
}

// NewKey returns a fresh random 32-byte key in base64 (for a key file entry
// or OTP_SEAL_KEY / OTP_HASH_KEY).
func NewKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func createKeyFile(path string) (keyFile, error) {
	kf := keyFile{SealKeys: []rawKey{{ID: DefaultKeyID, Key: NewKey()}}, HashKeys: []rawKey{{ID: DefaultKeyID, Key: NewKey()}}}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return kf, err
	}
	b, _ := json.MarshalIndent(kf, "", "  ")
	// O_EXCL: two processes starting on one data dir cannot both write keys.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadOrCreateKeyFile(path)
	}
	if err != nil {
		return kf, err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return kf, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return kf, err
	}
	return kf, f.Close()
}
