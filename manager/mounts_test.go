package manager

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/swarm"
)

func withMounts(ms ...mount.Mount) swarm.ServiceSpec {
	return swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox", Mounts: ms}}}
}

func TestValidateMounts(t *testing.T) {
	for _, tc := range []struct {
		m    []mount.Mount
		want string // "" = accepted
	}{
		{[]mount.Mount{{Type: mount.TypeBind, Source: "/srv/data", Target: "/data", ReadOnly: true}}, ""},
		{[]mount.Mount{{Type: mount.TypeBind, Source: "/srv", Target: "/data", BindOptions: &mount.BindOptions{Propagation: mount.PropagationRSlave}}}, ""},
		{[]mount.Mount{{Type: mount.TypeVolume, Source: "db-data", Target: "/var/lib/db",
			VolumeOptions: &mount.VolumeOptions{NoCopy: true, Labels: map[string]string{"a": "b"}, DriverConfig: &mount.Driver{Name: "local", Options: map[string]string{"type": "tmpfs"}}}}}, ""},
		{[]mount.Mount{{Source: "db-data", Target: "/db"}}, ""}, // docker's default type: volume
		{[]mount.Mount{{Type: mount.TypeVolume, Target: "/scratch"}}, ""},
		{[]mount.Mount{{Type: mount.TypeVolume, Source: "data-{{.Task.Slot}}", Target: "/data"}}, ""},
		{[]mount.Mount{{Type: mount.TypeVolume, Source: "x/y", Target: "/d", VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: "nfs-plugin"}}}}, ""},
		{[]mount.Mount{{Type: mount.TypeTmpfs, Target: "/run/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1777}}}, ""},
		{[]mount.Mount{{Type: mount.TypeTmpfs, Target: "/a"}, {Type: mount.TypeVolume, Target: "/b"}, {Type: mount.TypeBind, Source: "/c", Target: "/c"}}, ""},

		{[]mount.Mount{{Type: mount.TypeBind, Source: "/srv"}}, "the target is missing"},
		{[]mount.Mount{{Type: mount.TypeBind, Source: "/srv", Target: "data"}}, "invalid mount target, must be an absolute path: data"},
		{[]mount.Mount{{Type: mount.TypeVolume, Source: "v1", Target: "/"}}, "destination can't be '/'"},
		{[]mount.Mount{{Type: mount.TypeBind, Target: "/data"}}, "a bind mount needs a source"},
		{[]mount.Mount{{Type: mount.TypeBind, Source: "srv", Target: "/data"}}, "invalid bind mount source, must be an absolute path: srv"},
		{[]mount.Mount{{Type: mount.TypeBind, Source: "/srv", Target: "/d", BindOptions: &mount.BindOptions{Propagation: "sideways"}}}, "invalid propagation mode: sideways"},
		{[]mount.Mount{{Type: mount.TypeBind, Source: "/srv", Target: "/d", BindOptions: &mount.BindOptions{CreateMountpoint: true}}}, "CreateMountpoint is not supported"},
		{[]mount.Mount{{Type: mount.TypeVolume, Source: "/srv", Target: "/d"}}, "invalid volume mount source, must not be an absolute path: /srv"},
		{[]mount.Mount{{Type: mount.TypeVolume, Source: "a", Target: "/d"}}, "invalid characters for a local volume name"},
		{[]mount.Mount{{Type: mount.TypeVolume, Source: "../etc", Target: "/d"}}, "invalid characters for a local volume name"},
		{[]mount.Mount{{Type: mount.TypeVolume, Source: "my vol", Target: "/d"}}, "invalid characters for a local volume name"},
		{[]mount.Mount{{Type: mount.TypeVolume, Target: "/d", ReadOnly: true}}, "must not set ReadOnly mode when using anonymous volumes"},
		{[]mount.Mount{{Type: mount.TypeVolume, Source: "v1", Target: "/d", VolumeOptions: &mount.VolumeOptions{Subpath: "x"}}}, "Subpath (volume-subpath) is not supported yet"},
		{[]mount.Mount{{Type: mount.TypeTmpfs, Source: "x", Target: "/d"}}, "invalid tmpfs source, source must be empty"},
		{[]mount.Mount{{Type: mount.TypeTmpfs, Target: "/d", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: -1}}}, "tmpfs size must not be negative"},
		{[]mount.Mount{{Type: mount.TypeTmpfs, Target: "/d", TmpfsOptions: &mount.TmpfsOptions{Mode: 0o20000}}}, "invalid tmpfs mode"},
		{[]mount.Mount{{Type: mount.TypeTmpfs, Target: "/d", TmpfsOptions: &mount.TmpfsOptions{Options: [][]string{{"noexec"}}}}}, "TmpfsOptions.Options is not supported yet"},
		{[]mount.Mount{{Type: mount.TypeTmpfs, Target: "/d", BindOptions: &mount.BindOptions{}}}, "field BindOptions must not be specified for a tmpfs mount"},
		{[]mount.Mount{{Type: mount.TypeBind, Source: "/s", Target: "/d", VolumeOptions: &mount.VolumeOptions{}}}, "field VolumeOptions must not be specified for a bind mount"},
		{[]mount.Mount{{Type: mount.TypeVolume, Target: "/d", TmpfsOptions: &mount.TmpfsOptions{}}}, "field TmpfsOptions must not be specified for a volume mount"},
		{[]mount.Mount{{Type: mount.TypeNamedPipe, Source: `\\.\pipe\x`, Target: "/d"}}, `mount type "npipe" is not supported by flotilla`},
		{[]mount.Mount{{Type: mount.TypeCluster, Source: "csi", Target: "/d"}}, `mount type "cluster" is not supported by flotilla`},
		{[]mount.Mount{{Type: mount.TypeImage, Source: "busybox", Target: "/d"}}, `mount type "image" is not supported by flotilla`},
		{[]mount.Mount{{Type: "overlay", Target: "/d"}}, `invalid mount type "overlay"`},
		{[]mount.Mount{{Type: mount.TypeTmpfs, Target: "/d"}, {Type: mount.TypeVolume, Source: "v1", Target: "/d/"}}, "duplicate mount point: /d/"},
	} {
		spec := withMounts(tc.m...)
		err := validateServiceSpec(&spec)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: refused: %v", tc.m, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: err %v, want one containing %q", tc.m, err, tc.want)
		}
	}
}

func TestMountTypeDefaultsToVolume(t *testing.T) {
	spec := withMounts(mount.Mount{Source: "v1", Target: "/d"})
	if err := validateServiceSpec(&spec); err != nil {
		t.Fatal(err)
	}
	if got := spec.TaskTemplate.ContainerSpec.Mounts[0].Type; got != mount.TypeVolume {
		t.Errorf("type %q, want volume (docker's default)", got)
	}
}

func TestProcessDriverMountLimits(t *testing.T) {
	for _, tc := range []struct {
		m    mount.Mount
		want string
	}{
		{mount.Mount{Type: mount.TypeBind, Source: "/srv", Target: "/d"}, ""},
		{mount.Mount{Type: mount.TypeVolume, Source: "v1", Target: "/d", VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: "local"}}}, ""},
		{mount.Mount{Type: mount.TypeBind, Source: "/srv", Target: "/d", ReadOnly: true}, "cannot make a mount read-only"},
		{mount.Mount{Type: mount.TypeBind, Source: "/srv", Target: "/d", BindOptions: &mount.BindOptions{Propagation: mount.PropagationShared}}, "no bind propagation"},
		{mount.Mount{Type: mount.TypeVolume, Source: "v1", Target: "/d", VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: "nfs"}}}, `volume driver "nfs" is not available`},
		{mount.Mount{Type: mount.TypeVolume, Source: "v1", Target: "/d", VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Options: map[string]string{"type": "nfs"}}}}, "volume options (volume-opt) are not supported"},
	} {
		spec := withMounts(tc.m)
		spec.TaskTemplate.ContainerSpec.Labels = map[string]string{LabelDriver: "process"}
		err := validateServiceSpec(&spec)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: refused: %v", tc.m, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: err %v, want one containing %q", tc.m, err, tc.want)
		}
		// The docker driver takes them all.
		spec = withMounts(tc.m)
		if err := validateServiceSpec(&spec); err != nil {
			t.Errorf("%+v on the docker driver: %v", tc.m, err)
		}
	}
}
