package state

import "github.com/moby/moby/api/types/swarm"

// Secret is a swarm secret. Spec.Data holds its bytes: it lives in the
// replicated state like every object, so it is in the Raft log and its
// snapshots, which manager/raftnode seals at rest (security/encryption).
// Nothing outside package manager's wire conversion may hand Spec.Data
// to a client.
type Secret struct {
	swarm.Secret
}

// Config is a swarm config: like a secret, but its data is not secret
// and the API shows it.
type Config struct {
	swarm.Config
}

// Tables of secrets and configs.
const (
	TableSecrets = "secrets"
	TableConfigs = "configs"
)

func init() {
	tables[TableSecrets] = tableDef{newObj: func() Object { return &Secret{} }}
	tables[TableConfigs] = tableDef{newObj: func() Object { return &Config{} }}
}

// GetID returns the object's ID.
func (s *Secret) GetID() string { return s.ID }

// GetMeta returns the object's version and timestamps.
func (s *Secret) GetMeta() *swarm.Meta { return &s.Meta }

// Copy returns a deep copy.
func (s *Secret) Copy() *Secret {
	var out Secret
	mustCopy(s, &out)
	return &out
}

// GetID returns the object's ID.
func (c *Config) GetID() string { return c.ID }

// GetMeta returns the object's version and timestamps.
func (c *Config) GetMeta() *swarm.Meta { return &c.Meta }

// Copy returns a deep copy.
func (c *Config) Copy() *Config {
	var out Config
	mustCopy(c, &out)
	return &out
}

// Secret returns a secret by full ID, or nil.
func (v *View) Secret(id string) *Secret {
	if o := v.Get(TableSecrets, id); o != nil {
		return o.(*Secret)
	}
	return nil
}

// Secrets returns every secret, in ID order.
func (v *View) Secrets() []*Secret {
	objs := v.List(TableSecrets)
	out := make([]*Secret, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*Secret))
	}
	return out
}

// Config returns a config by full ID, or nil.
func (v *View) Config(id string) *Config {
	if o := v.Get(TableConfigs, id); o != nil {
		return o.(*Config)
	}
	return nil
}

// Configs returns every config, in ID order.
func (v *View) Configs() []*Config {
	objs := v.List(TableConfigs)
	out := make([]*Config, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*Config))
	}
	return out
}
