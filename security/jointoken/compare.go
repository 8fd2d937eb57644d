package jointoken

import "crypto/subtle"

// MatchesCA reports whether t was made for the CA whose certificate is
// caCertDER. The compare is constant-time so that a peer probing digests
// learns nothing from timing.
func (t Token) MatchesCA(caCertDER []byte) bool {
	return constantTimeEqual(t.Digest, Digest(caCertDER))
}

// SameSecret reports whether two token strings carry the same secret. A
// manager uses it to check a presented token against its worker and manager
// tokens; the compare is constant-time because the secret is what admits a
// node. It returns false if either string is not a valid token. It does not
// compare digests: check those with MatchesCA.
func SameSecret(a, b string) bool {
	ta, err := Parse(a)
	if err != nil {
		return false
	}
	tb, err := Parse(b)
	if err != nil {
		return false
	}
	return constantTimeEqual(ta.Secret, tb.Secret)
}

// constantTimeEqual compares strings without an early exit on the first
// differing byte. The length can leak, which is harmless: valid digests and
// secrets have fixed lengths.
func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
