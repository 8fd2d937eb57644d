package jointoken

import (
	"fmt"
	"math/big"
	"strings"
)

// Field widths in base 36. 36^50 > 2^256 and 36^25 > 2^128, so these are
// the shortest widths that fit every digest and every secret; padding to a
// fixed width keeps all tokens the same length and easy to validate.
const (
	digestLen = 50
	secretLen = 25

	digestBits = 256
	secretBits = 128
)

// encodeBase36 writes b as a big-endian unsigned integer in lowercase base
// 36, left-padded with '0' to width characters.
func encodeBase36(b []byte, width int) string {
	s := new(big.Int).SetBytes(b).Text(36)
	if len(s) >= width {
		return s
	}
	return strings.Repeat("0", width-len(s)) + s
}

// checkBase36 reports why s is not a width-character lowercase base-36
// number of at most maxBits bits, or nil if it is. The bit limit rejects
// values no SHA-256 or 128-bit secret could have produced, so a corrupted
// token fails here rather than as a confusing mismatch later.
func checkBase36(s string, width, maxBits int) error {
	if len(s) != width {
		return fmt.Errorf("has %d characters, want %d", len(s), width)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return fmt.Errorf("has %q at position %d; only 0-9 and a-z are allowed", c, i)
		}
	}
	n, ok := new(big.Int).SetString(s, 36)
	if !ok {
		// Unreachable after the character check; kept so a future change
		// to that check cannot silently accept garbage.
		return fmt.Errorf("is not a base-36 number")
	}
	if n.BitLen() > maxBits {
		return fmt.Errorf("is larger than %d bits", maxBits)
	}
	return nil
}
