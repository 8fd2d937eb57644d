package manager

import (
	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager/state"
	"github.com/flotilla-org/flotilla/security/encryption"
)

// NewUnlockKey returns a fresh unlock key in its printed form.
func NewUnlockKey() (string, error) {
	k, err := encryption.NewKey()
	if err != nil {
		return "", err
	}
	return k.UnlockKeyString(), nil
}

// setUnlockKey makes c's unlock key follow its spec, as Docker does: a key
// appears when autolock is turned on, is replaced on rotation, and is
// dropped when autolock is turned off (the managers then keep their keys
// in plain again).
func setUnlockKey(c *state.Cluster, rotate bool) error {
	if !c.Spec.EncryptionConfig.AutoLockManagers {
		if rotate {
			return errdefs.Invalid("cannot rotate the unlock key because autolock is not turned on; turn it on with 'swarm update --autolock=true'")
		}
		c.UnlockKey = ""
		return nil
	}
	if c.UnlockKey != "" && !rotate {
		return nil
	}
	k, err := NewUnlockKey()
	if err != nil {
		return err
	}
	c.UnlockKey = k
	return nil
}

// UnlockKey returns the swarm's unlock key, "" when autolock is off.
func (m *Manager) UnlockKey() (string, error) {
	c, err := m.Cluster()
	if err != nil {
		return "", err
	}
	return c.UnlockKey, nil
}
