package jointoken

import (
	"crypto/hmac"
	"crypto/sha256"
)

// Derive makes the join token of a role ("manager" or "worker") for the CA
// caCertDER from a secret the nodes share before any swarm exists
// (--bootstrap-token). Every node holding the secret computes the same
// token from the CA it fetched, so the first manager never has to hand its
// tokens out. The token is as strong as the secret.
func Derive(caCertDER, secret []byte, role string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("flotilla bootstrap join token\x00" + role + "\x00"))
	mac.Write(caCertDER)
	sum := mac.Sum(nil)[:secretBits/8]
	return Token{Version: currentVersion, Digest: Digest(caCertDER), Secret: encodeBase36(sum, secretLen)}.String()
}
