package encryption

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of every key: AES-256.
const KeySize = 32

// Key is a DEK or a KEK.
type Key [KeySize]byte

// NewKey returns a random key.
func NewKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return k, fmt.Errorf("generate key: %w", err)
	}
	return k, nil
}

// Equal compares in constant time.
func (k Key) Equal(o Key) bool { return subtle.ConstantTimeCompare(k[:], o[:]) == 1 }

// unlockKeyPrefix marks a human-readable unlock key, as Docker's do, so a
// user who pastes a join token or anything else gets a clear error.
const unlockKeyPrefix = "SWMKEY-1-"

// UnlockKeyString is the form the user sees and types: SWMKEY-1-<base64>.
func (k Key) UnlockKeyString() string {
	return unlockKeyPrefix + base64.RawStdEncoding.EncodeToString(k[:])
}

// ErrBadUnlockKey is returned for a string that is not an unlock key at all.
var ErrBadUnlockKey = errors.New("invalid key string: an unlock key looks like SWMKEY-1-... as printed by 'swarm unlock-key'")

// ParseUnlockKey reads a key in UnlockKeyString's form. Surrounding white
// space is ignored (keys are often pasted).
func ParseUnlockKey(s string) (Key, error) {
	var k Key
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, unlockKeyPrefix)
	if !ok {
		return k, ErrBadUnlockKey
	}
	b, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(b) != KeySize {
		return k, ErrBadUnlockKey
	}
	copy(k[:], b)
	return k, nil
}
