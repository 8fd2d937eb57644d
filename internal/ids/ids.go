// Package ids makes object IDs in Docker's shape: 25 lowercase base-36
// characters carrying 128 random bits.
package ids

import (
	"crypto/rand"
	"math/big"
	"strings"
)

// New returns a fresh random ID.
func New() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux; if it does, nothing is safe
	}
	s := new(big.Int).SetBytes(b[:]).Text(36)
	return strings.Repeat("0", 25-len(s)) + s
}
