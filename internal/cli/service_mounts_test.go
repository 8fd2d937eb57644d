package cli

import (
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"
)

func TestParseMount(t *testing.T) {
	ok := []struct {
		in   string
		want mount.Mount
	}{
		{"type=bind,source=/srv/data,target=/data", mount.Mount{Type: mount.TypeBind, Source: "/srv/data", Target: "/data"}},
		{"type=bind,src=/s,dst=/d,readonly", mount.Mount{Type: mount.TypeBind, Source: "/s", Target: "/d", ReadOnly: true}},
		{"type=bind,src=/s,destination=/d,ro=false,bind-propagation=rslave", mount.Mount{Type: mount.TypeBind, Source: "/s", Target: "/d",
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRSlave}}},
		{"source=db,target=/var/lib/db", mount.Mount{Type: mount.TypeVolume, Source: "db", Target: "/var/lib/db"}},
		{"type=volume,target=/scratch", mount.Mount{Type: mount.TypeVolume, Target: "/scratch"}},
		{"type=volume,src=db,dst=/db,volume-driver=local,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-label=app=x,volume-nocopy",
			mount.Mount{Type: mount.TypeVolume, Source: "db", Target: "/db", VolumeOptions: &mount.VolumeOptions{
				NoCopy: true, Labels: map[string]string{"app": "x"},
				DriverConfig: &mount.Driver{Name: "local", Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}}}}},
		{"type=tmpfs,target=/run/t,tmpfs-size=64M,tmpfs-mode=1770", mount.Mount{Type: mount.TypeTmpfs, Target: "/run/t",
			TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20, Mode: 0o1770}}},
		{"TYPE=TMPFS,Target=/t", mount.Mount{Type: mount.TypeTmpfs, Target: "/t"}},
	}
	for _, c := range ok {
		got, err := parseMount(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseMount(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	bad := map[string]string{
		"":                                 "target is required",
		"type=bind,source=/s":              "target is required",
		"type=bind,source=/s,target=/d,rw": `field "rw" must be a key=value pair`,
		"target=/d,readonly=maybe":         "invalid value for readonly",
		"target=/d,size=1":                 `unexpected key "size"`,
		"type=bind,src=/s,target=/d,volume-nocopy":     "cannot mix 'volume-*' options with mount type 'bind'",
		"type=volume,target=/d,bind-propagation=slave": "cannot mix 'bind-*' options with mount type 'volume'",
		"target=/d,tmpfs-size=1M":                      "cannot mix 'tmpfs-*' options with mount type 'volume'",
		"type=tmpfs,target=/d,tmpfs-size=lots":         "invalid tmpfs-size",
		"type=tmpfs,target=/d,tmpfs-mode=999":          "invalid tmpfs-mode",
		"target=/d,volume-opt=novalue":                 "volume-opt",
	}
	for in, want := range bad {
		if _, err := parseMount(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseMount(%q) error %v; want one mentioning %q", in, err, want)
		}
	}
}

func TestEditMounts(t *testing.T) {
	ms := []mount.Mount{{Type: mount.TypeVolume, Source: "a1", Target: "/a"}, {Type: mount.TypeTmpfs, Target: "/b"}, {Type: mount.TypeBind, Source: "/c", Target: "/c"}}
	add, _ := parseMounts([]string{"type=volume,source=a2,target=/a", "type=tmpfs,target=/d"})
	if err := editMounts(&ms, []string{"/b"}, add); err != nil {
		t.Fatal(err)
	}
	want := []mount.Mount{{Type: mount.TypeBind, Source: "/c", Target: "/c"}, {Type: mount.TypeVolume, Source: "a2", Target: "/a"}, {Type: mount.TypeTmpfs, Target: "/d"}}
	if !reflect.DeepEqual(ms, want) {
		t.Errorf("mounts after the edit: %+v; want %+v", ms, want)
	}
	if err := editMounts(&ms, []string{"/nosuch"}, nil); err == nil || !strings.Contains(err.Error(), "no mount on that target") {
		t.Errorf("--mount-rm of a target without a mount: %v", err)
	}
	twice, _ := parseMounts([]string{"type=tmpfs,target=/x", "type=tmpfs,target=/x"})
	if err := editMounts(&ms, nil, twice); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("--mount-add twice on one target: %v", err)
	}
}
