package jointoken

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
)

// Digest returns the token form of the SHA-256 of a CA certificate's DER:
// lowercase base 36, left-padded to 50 characters.
func Digest(caCertDER []byte) string {
	sum := sha256.Sum256(caCertDER)
	return encodeBase36(sum[:], digestLen)
}

// Generate returns a new join token for the CA whose certificate is
// caCertDER, with a fresh random secret. Call it once per role: worker
// and manager tokens must not share a secret.
func Generate(caCertDER []byte) (string, error) {
	if len(caCertDER) == 0 {
		// A digest of nothing would be a token no joiner could ever verify.
		return "", fmt.Errorf("generate join token: empty CA certificate")
	}
	secret := make([]byte, secretBits/8)
	if _, err := rand.Read(secret); err != nil {
		return "", fmt.Errorf("generate join token: %w", err)
	}
	t := Token{
		Version: currentVersion,
		Digest:  Digest(caCertDER),
		Secret:  encodeBase36(secret, secretLen),
	}
	return t.String(), nil
}
