package ca

import (
	"errors"
	"fmt"
)

// Role strings used in this package's API.
const (
	RoleManager = "manager"
	RoleWorker  = "worker"
)

// Values of the certificate's OrganizationalUnit. They are prefixed so a
// certificate from some other PKI that happens to say "manager" is not read
// as one of ours.
const (
	ouManager = "flotilla-manager"
	ouWorker  = "flotilla-worker"
)

// maxNameLen is RFC 5280's upper bound for CommonName and Organization.
const maxNameLen = 64

// roleToOU maps an API role to the OU stored in certificates.
func roleToOU(role string) (string, error) {
	switch role {
	case RoleManager:
		return ouManager, nil
	case RoleWorker:
		return ouWorker, nil
	}
	return "", fmt.Errorf("unknown role %q: want %q or %q", role, RoleManager, RoleWorker)
}

// ouToRole is the inverse of roleToOU.
func ouToRole(ou string) (string, error) {
	switch ou {
	case ouManager:
		return RoleManager, nil
	case ouWorker:
		return RoleWorker, nil
	}
	return "", fmt.Errorf("unknown role %q in certificate OU: want %q or %q", ou, ouManager, ouWorker)
}

// checkName validates a node or cluster ID. IDs end up in the subject and
// (node IDs) in a DNS SAN, so they are limited to characters valid in both,
// which also keeps them safe to log and to use in file names.
func checkName(kind, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", kind)
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("%s is %d bytes long, at most %d allowed", kind, len(s), maxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_'
		if !ok {
			return fmt.Errorf("%s %q has %q at position %d; only letters, digits, '-', '.' and '_' are allowed", kind, s, c, i)
		}
	}
	return nil
}

// errNoSigningKey is returned when a verify-only CA is asked to sign.
var errNoSigningKey = errors.New("root CA has no private key: it can verify but not sign")
