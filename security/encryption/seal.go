package encryption

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// magic starts every sealed blob: a byte no plain Raft entry of flotilla
// starts with (commands start with their type, 1; Raft's own entries are
// msgpack maps, 0x8x/0xde) then "FE" and the format version.
var magic = []byte{0xfe, 'F', 'E', 1}

const nonceSize = 12

// Overhead is how much longer sealed data is than its plaintext.
const Overhead = 4 + nonceSize + 16

// ErrDecrypt is returned when sealed data does not open with the key: the
// key is wrong or the data was changed.
var ErrDecrypt = errors.New("decryption failed: wrong key, or the data was tampered with or damaged")

// IsSealed tells sealed data from plain (legacy) data.
func IsSealed(b []byte) bool { return bytes.HasPrefix(b, magic) }

func aead(k Key) (cipher.AEAD, error) {
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encrypts and authenticates plain, binding it to ad (which is not
// stored: the reader must supply the same).
func Seal(k Key, plain, ad []byte) ([]byte, error) {
	g, err := aead(k)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(magic)+nonceSize, len(magic)+nonceSize+len(plain)+g.Overhead())
	copy(out, magic)
	if _, err := rand.Read(out[len(magic):]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return g.Seal(out, out[len(magic):], plain, ad), nil
}

// Open reverses Seal. It fails with ErrDecrypt for a wrong key, a
// different ad, or any change to the data.
func Open(k Key, sealed, ad []byte) ([]byte, error) {
	if !IsSealed(sealed) {
		return nil, errors.New("data is not sealed (no encryption header)")
	}
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("sealed data is truncated (%d bytes)", len(sealed))
	}
	g, err := aead(k)
	if err != nil {
		return nil, err
	}
	nonce := sealed[len(magic) : len(magic)+nonceSize]
	plain, err := g.Open(nil, nonce, sealed[len(magic)+nonceSize:], ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return plain, nil
}
