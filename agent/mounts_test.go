package agent

import (
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver"
)

func TestSpecOfMounts(t *testing.T) {
	task := swarm.Task{ID: "t1", ServiceID: "s1", Slot: 3, Spec: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "img", Mounts: []mount.Mount{
		{Type: mount.TypeBind, Source: "/srv/{{.Service.Name}}", Target: "/data", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: mount.PropagationRSlave}},
		{Source: "db-{{.Task.Slot}}", Target: "/db", VolumeOptions: &mount.VolumeOptions{NoCopy: true, Labels: map[string]string{"a": "b"},
			DriverConfig: &mount.Driver{Name: "local", Options: map[string]string{"type": "tmpfs"}}}},
		{Type: mount.TypeTmpfs, Target: "/run/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1770}},
	}}}}
	got := specOf("n1", "host1", "web", task).Mounts
	want := []driver.Mount{
		{Type: driver.MountBind, Source: "/srv/web", Target: "/data", ReadOnly: true, Propagation: "rslave"},
		{Type: driver.MountVolume, Source: "db-3", Target: "/db", NoCopy: true, VolumeLabels: map[string]string{"a": "b"}, VolumeDriver: "local", VolumeOptions: map[string]string{"type": "tmpfs"}},
		{Type: driver.MountTmpfs, Target: "/run/t", TmpfsSize: 1 << 20, TmpfsMode: 0o1770},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("specOf mounts:\n got %+v\nwant %+v", got, want)
	}
}
