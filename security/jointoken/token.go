package jointoken

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

const (
	// tokenPrefix is the fixed first field; the name is kept from Docker
	// swarm so tokens look familiar to operators.
	tokenPrefix = "SWMTKN"

	// currentVersion is the only token format this package understands.
	currentVersion = 1
)

// Token is a parsed join token.
type Token struct {
	Version int
	Digest  string // SHA-256 of the root CA certificate DER, base 36, 50 chars
	Secret  string // 128 random bits, base 36, 25 chars
}

// String formats t as SWMTKN-<version>-<digest>-<secret>.
func (t Token) String() string {
	return fmt.Sprintf("%s-%d-%s-%s", tokenPrefix, t.Version, t.Digest, t.Secret)
}

// Parse parses a join token. Surrounding whitespace is ignored because
// tokens are usually pasted from a terminal. The errors name the part that
// is wrong, since an operator has to fix the token by hand.
func Parse(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, tokenPrefix+"-") {
		return Token{}, errors.New("not a join token: it must start with SWMTKN-1-")
	}
	parts := strings.Split(s, "-")
	if len(parts) != 4 {
		return Token{}, fmt.Errorf("malformed join token: it has %d dash-separated parts, want 4 (SWMTKN-1-<digest>-<secret>)", len(parts))
	}
	version, err := parseVersion(parts[1])
	if err != nil {
		return Token{}, err
	}
	if err := checkBase36(parts[2], digestLen, digestBits); err != nil {
		return Token{}, fmt.Errorf("malformed join token: CA digest %w", err)
	}
	if err := checkBase36(parts[3], secretLen, secretBits); err != nil {
		return Token{}, fmt.Errorf("malformed join token: secret %w", err)
	}
	return Token{Version: version, Digest: parts[2], Secret: parts[3]}, nil
}

// parseVersion accepts only the canonical decimal spelling of a supported
// version, so that "01" or "+1" cannot name the same token as "1".
func parseVersion(s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || strconv.Itoa(v) != s {
		return 0, fmt.Errorf("malformed join token: version %q is not a number", s)
	}
	if v != currentVersion {
		return 0, fmt.Errorf("unsupported join token version %d: this build understands version %d", v, currentVersion)
	}
	return v, nil
}
