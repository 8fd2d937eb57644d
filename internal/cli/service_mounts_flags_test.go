package cli_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/swarm"
)

func TestServiceMountFlags(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("POST /services/create", http.StatusCreated, swarm.ServiceCreateResponse{ID: svcWebID})
	mustRun(t, f.host, "service", "create", "-d", "--mount", "type=bind,src=/srv,dst=/data,ro", "--mount", "source=db,target=/db", "nginx")
	got := createdSpec(t, f).TaskTemplate.ContainerSpec.Mounts
	want := []mount.Mount{{Type: mount.TypeBind, Source: "/srv", Target: "/data", ReadOnly: true}, {Type: mount.TypeVolume, Source: "db", Target: "/db"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("create sent mounts %+v; want %+v", got, want)
	}
	if r := run(t, f.host, "service", "create", "-d", "--mount", "type=bind,source=/s", "nginx"); r.err == nil || !strings.Contains(r.stderr, "target is required") {
		t.Errorf("a --mount without a target: err=%v stderr=%q", r.err, r.stderr)
	}

	svc := richService()
	svc.Spec.TaskTemplate.ContainerSpec.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: "db", Target: "/db"}, {Type: mount.TypeTmpfs, Target: "/tmp"}}
	g := newFakeAPI(t)
	g.reply("GET /services/web", http.StatusOK, svc)
	g.reply("POST /services/"+svcWebID+"/update", http.StatusOK, swarm.ServiceUpdateResponse{})
	mustRun(t, g.host, "service", "update", "-d", "--mount-rm", "/tmp", "--mount-add", "type=tmpfs,target=/cache,tmpfs-size=1M", "web")
	spec, _ := updatedSpec(t, g, svcWebID, "42")
	want = []mount.Mount{{Type: mount.TypeVolume, Source: "db", Target: "/db"}, {Type: mount.TypeTmpfs, Target: "/cache", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20}}}
	if !reflect.DeepEqual(spec.TaskTemplate.ContainerSpec.Mounts, want) {
		t.Errorf("update sent mounts %+v; want %+v (db kept, /tmp removed, /cache added)", spec.TaskTemplate.ContainerSpec.Mounts, want)
	}
}

func TestServiceInspectPrettyMounts(t *testing.T) {
	svc := richService()
	svc.Spec.TaskTemplate.ContainerSpec.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: "db", Target: "/db"}, {Type: mount.TypeBind, Source: "/srv", Target: "/srv", ReadOnly: true}}
	f := newFakeAPI(t)
	f.reply("GET /services/web", http.StatusOK, svc)
	out := mustRun(t, f.host, "service", "inspect", "--pretty", "web").stdout
	for _, want := range []string{"Mounts:", " Target:", "/db", "  Source:", "db", "  ReadOnly:", "true", "  Type:", "bind"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect --pretty does not say %q:\n%s", want, out)
		}
	}
}
