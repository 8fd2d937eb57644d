package cli

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/mount"
)

// mountHelp is the --mount grammar, docker's.
const mountHelp = "Attach a filesystem mount to the service: type=bind|volume|tmpfs,source=SRC,target=/PATH[,readonly]" +
	"[,volume-driver=D][,volume-opt=K=V][,volume-label=K=V][,volume-nocopy][,tmpfs-size=64M][,tmpfs-mode=1777][,bind-propagation=rprivate]"

// parseMount parses a --mount value as docker's CLI does (opts/mount.go):
// comma-separated key=value fields, the type volume unless given, a
// target always. The managers check the rest (absolute paths, names).
func parseMount(v string) (mount.Mount, error) {
	m := mount.Mount{Type: mount.TypeVolume}
	bad := func(why string) (mount.Mount, error) {
		return mount.Mount{}, fmt.Errorf("invalid --mount %q: %s", v, why)
	}
	volumeOpts := func() *mount.VolumeOptions {
		if m.VolumeOptions == nil {
			m.VolumeOptions = &mount.VolumeOptions{}
		}
		return m.VolumeOptions
	}
	driver := func() *mount.Driver {
		if volumeOpts().DriverConfig == nil {
			m.VolumeOptions.DriverConfig = &mount.Driver{}
		}
		return m.VolumeOptions.DriverConfig
	}
	tmpfsOpts := func() *mount.TmpfsOptions {
		if m.TmpfsOptions == nil {
			m.TmpfsOptions = &mount.TmpfsOptions{}
		}
		return m.TmpfsOptions
	}
	for _, field := range strings.Split(v, ",") {
		field = strings.TrimSpace(field)
		if field == "" {
			continue
		}
		key, val, hasVal := strings.Cut(field, "=")
		key = strings.ToLower(key)
		if !hasVal {
			switch key {
			case "readonly", "ro", "volume-nocopy":
				val = "true" // a flag alone means true
			default:
				return bad(fmt.Sprintf("field %q must be a key=value pair", field))
			}
		}
		boolean := func() (bool, error) {
			b, err := strconv.ParseBool(val)
			if err != nil {
				return false, fmt.Errorf("invalid value for %s: %q (use true or false)", key, val)
			}
			return b, nil
		}
		var err error
		switch key {
		case "type":
			m.Type = mount.Type(strings.ToLower(val))
		case "source", "src":
			m.Source = val
		case "target", "dst", "destination":
			m.Target = val
		case "readonly", "ro":
			m.ReadOnly, err = boolean()
		case "consistency":
			m.Consistency = mount.Consistency(strings.ToLower(val))
		case "bind-propagation":
			if m.BindOptions == nil {
				m.BindOptions = &mount.BindOptions{}
			}
			m.BindOptions.Propagation = mount.Propagation(strings.ToLower(val))
		case "volume-nocopy":
			volumeOpts().NoCopy, err = boolean()
		case "volume-label":
			k, lv, _ := strings.Cut(val, "=")
			if k == "" {
				return bad(fmt.Sprintf("volume-label %q has no key", val))
			}
			if volumeOpts().Labels == nil {
				m.VolumeOptions.Labels = map[string]string{}
			}
			m.VolumeOptions.Labels[k] = lv
		case "volume-driver":
			driver().Name = val
		case "volume-opt":
			k, ov, ok := strings.Cut(val, "=")
			if !ok || k == "" {
				return bad(fmt.Sprintf("volume-opt %q is not key=value", val))
			}
			d := driver()
			if d.Options == nil {
				d.Options = map[string]string{}
			}
			d.Options[k] = ov
		case "tmpfs-size":
			n, serr := units.RAMInBytes(val)
			if serr != nil || n < 0 {
				return bad(fmt.Sprintf("invalid tmpfs-size %q: a number of bytes with an optional unit (e.g. 64M)", val))
			}
			tmpfsOpts().SizeBytes = n
		case "tmpfs-mode":
			n, perr := strconv.ParseUint(val, 8, 32)
			if perr != nil {
				return bad(fmt.Sprintf("invalid tmpfs-mode %q: an octal mode (e.g. 1777)", val))
			}
			tmpfsOpts().Mode = os.FileMode(n)
		default:
			return bad(fmt.Sprintf("unexpected key %q; use type, source, target, readonly, volume-driver, volume-opt, volume-label, volume-nocopy, tmpfs-size, tmpfs-mode or bind-propagation", key))
		}
		if err != nil {
			return bad(err.Error())
		}
	}
	if m.Target == "" {
		return bad("target is required")
	}
	if m.VolumeOptions != nil && m.Type != mount.TypeVolume {
		return bad(fmt.Sprintf("cannot mix 'volume-*' options with mount type '%s'", m.Type))
	}
	if m.BindOptions != nil && m.Type != mount.TypeBind {
		return bad(fmt.Sprintf("cannot mix 'bind-*' options with mount type '%s'", m.Type))
	}
	if m.TmpfsOptions != nil && m.Type != mount.TypeTmpfs {
		return bad(fmt.Sprintf("cannot mix 'tmpfs-*' options with mount type '%s'", m.Type))
	}
	return m, nil
}

func parseMounts(vs []string) ([]mount.Mount, error) { return parseAll(vs, parseMount) }

// editMounts applies --mount-rm (by target) then --mount-add (a mount on
// a target the service has replaces it) to a service's mounts.
func editMounts(ms *[]mount.Mount, rm []string, add []mount.Mount) error {
	for _, target := range rm {
		before := len(*ms)
		*ms = slices.DeleteFunc(*ms, func(m mount.Mount) bool { return m.Target == target })
		if len(*ms) == before {
			return fmt.Errorf("invalid --mount-rm %s: the service has no mount on that target", target)
		}
	}
	for i, a := range add {
		if slices.ContainsFunc(add[:i], func(b mount.Mount) bool { return b.Target == a.Target }) {
			return fmt.Errorf("invalid --mount-add: target %s is given twice", a.Target)
		}
		*ms = slices.DeleteFunc(*ms, func(m mount.Mount) bool { return m.Target == a.Target })
		*ms = append(*ms, a)
	}
	return nil
}
