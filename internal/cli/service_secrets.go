package cli

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/swarm"
)

// fileRef is a parsed --secret or --config value, docker's grammar:
// NAME, or source=NAME[,target=PATH][,uid=UID][,gid=GID][,mode=OCTAL].
// The managers resolve the name to the object's ID and fill the
// defaults (target NAME under /run/secrets, or /NAME for a config; uid
// and gid 0; mode 0444).
type fileRef struct {
	source, target, uid, gid string
	mode                     os.FileMode
}

func parseFileRef(flag, v string) (fileRef, error) {
	var r fileRef
	bad := func(why string) (fileRef, error) {
		return fileRef{}, fmt.Errorf("invalid --%s %q: %s; use NAME or source=NAME[,target=PATH][,uid=UID][,gid=GID][,mode=0444]", flag, v, why)
	}
	if !strings.Contains(v, "=") {
		r.source = strings.TrimSpace(v)
	} else if why := eachField(v, func(k, val string) string {
		switch k {
		case "source", "src":
			r.source = val
		case "target":
			r.target = val
		case "uid":
			r.uid = val
		case "gid":
			r.gid = val
		case "mode":
			m, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return fmt.Sprintf("mode %q is not an octal file mode", val)
			}
			r.mode = os.FileMode(m)
		default:
			return fmt.Sprintf("unknown key %q", k)
		}
		return ""
	}); why != "" {
		return bad(why)
	}
	if r.source == "" {
		return bad("the source (the " + flag + "'s name) is missing")
	}
	return r, nil
}

func parseSecretRefs(flag string, vs []string) ([]*swarm.SecretReference, error) {
	return parseAll(vs, func(v string) (*swarm.SecretReference, error) {
		r, err := parseFileRef(flag, v)
		if err != nil {
			return nil, err
		}
		return &swarm.SecretReference{SecretName: r.source,
			File: &swarm.SecretReferenceFileTarget{Name: r.target, UID: r.uid, GID: r.gid, Mode: r.mode}}, nil
	})
}

func parseConfigRefs(flag string, vs []string) ([]*swarm.ConfigReference, error) {
	return parseAll(vs, func(v string) (*swarm.ConfigReference, error) {
		r, err := parseFileRef(flag, v)
		if err != nil {
			return nil, err
		}
		return &swarm.ConfigReference{ConfigName: r.source,
			File: &swarm.ConfigReferenceFileTarget{Name: r.target, UID: r.uid, GID: r.gid, Mode: r.mode}}, nil
	})
}

// editRefs applies --secret-rm then --secret-add (or the --config ones)
// to a service's references, keeping the others: a removal names a
// reference by its source's name or ID.
func editRefs[T any](refs *[]*T, rm []string, add []*T, names func(*T) (name, id string), flag string) error {
	for _, r := range rm {
		before := len(*refs)
		*refs = slices.DeleteFunc(*refs, func(x *T) bool { n, id := names(x); return n == r || id == r })
		if len(*refs) == before {
			return fmt.Errorf("invalid --%s-rm %s: the service has no such %s", flag, r, flag)
		}
	}
	*refs = append(*refs, add...)
	return nil
}

func secretNames(r *swarm.SecretReference) (string, string) { return r.SecretName, r.SecretID }
func configNames(r *swarm.ConfigReference) (string, string) { return r.ConfigName, r.ConfigID }
