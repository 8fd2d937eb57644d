package daemon

import (
	"io"
	"log/slog"
	"testing"
)

func TestRelocate(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	stored := localState{ListenAddr: "127.0.0.1:4000", AdvertiseAddr: "127.0.0.1:4000"}
	cases := []struct {
		name, listen, advertise string
		wantListen, wantAdv     string
		moved, fails            bool
	}{
		{"no flags: stays", "", "", "127.0.0.1:4000", "127.0.0.1:4000", false, false},
		{"same address given", "127.0.0.1:4000", "", "127.0.0.1:4000", "127.0.0.1:4000", false, false},
		{"new listen address: advertised too", "127.0.0.2:5000", "", "127.0.0.2:5000", "127.0.0.2:5000", true, false},
		{"new advertise address only", "", "10.1.2.3", "127.0.0.1:4000", "10.1.2.3:4000", true, false},
		{"unspecified advertise refused", "", "0.0.0.0:4000", "127.0.0.1:4000", "127.0.0.1:4000", false, true},
		{"host name listen refused", "example.com:4000", "", "127.0.0.1:4000", "127.0.0.1:4000", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &Daemon{cfg: Config{Bootstrap: BootstrapConfig{ListenAddr: tc.listen, AdvertiseAddr: tc.advertise}}, log: quiet}
			st := stored
			moved, err := d.relocate(&st, "")
			if (err != nil) != tc.fails || moved != tc.moved {
				t.Fatalf("moved=%v err=%v, want moved=%v fails=%v", moved, err, tc.moved, tc.fails)
			}
			if st.ListenAddr != tc.wantListen || st.AdvertiseAddr != tc.wantAdv {
				t.Errorf("state %s / %s, want %s / %s", st.ListenAddr, st.AdvertiseAddr, tc.wantListen, tc.wantAdv)
			}
		})
	}

	// A guessed advertise address the machine no longer has is chosen
	// again; one it still has, or one the user gave, stays.
	d := &Daemon{log: quiet}
	gone := localState{ListenAddr: "0.0.0.0:2377", AdvertiseAddr: "192.0.2.55:2377", AdvertiseGuessed: true}
	if moved, err := d.relocate(&gone, ""); err == nil && (!moved || gone.AdvertiseAddr == "192.0.2.55:2377") {
		t.Errorf("guessed address that is gone: moved=%v advertise %s", moved, gone.AdvertiseAddr)
	}
	given := localState{ListenAddr: "0.0.0.0:2377", AdvertiseAddr: "192.0.2.55:2377"}
	if moved, err := d.relocate(&given, ""); moved || err != nil {
		t.Errorf("an advertise address the user gave was changed: moved=%v err=%v", moved, err)
	}

	// A bootstrap provider that reports another instance IP moves the
	// advertise address and keeps its port; the same IP changes nothing.
	inGCE := localState{ListenAddr: "0.0.0.0:2377", AdvertiseAddr: "10.0.0.5:2377"}
	if moved, err := d.relocate(&inGCE, "10.0.0.5"); moved || err != nil {
		t.Errorf("same instance IP: moved=%v err=%v", moved, err)
	}
	if moved, err := d.relocate(&inGCE, "10.0.0.9"); !moved || err != nil || inGCE.AdvertiseAddr != "10.0.0.9:2377" || inGCE.ListenAddr != "0.0.0.0:2377" {
		t.Errorf("new instance IP: moved=%v err=%v, state %s / %s", moved, err, inGCE.ListenAddr, inGCE.AdvertiseAddr)
	}
	// The bootstrap's --listen-addr given again at a restart changes
	// nothing, whatever the advertise address is.
	d.cfg.Bootstrap.ListenAddr = "127.0.0.1:4000"
	boot := localState{ListenAddr: "127.0.0.1:4000", AdvertiseAddr: "10.0.0.5:4000"}
	if moved, err := d.relocate(&boot, ""); moved || err != nil {
		t.Errorf("the same --listen-addr again: moved=%v err=%v, state %s / %s", moved, err, boot.ListenAddr, boot.AdvertiseAddr)
	}
	if !advertiseGuessed("", "0.0.0.0:2377") || !advertiseGuessed("", ":2377") || advertiseGuessed("10.0.0.1", "0.0.0.0:2377") || advertiseGuessed("", "10.0.0.1:2377") {
		t.Error("advertiseGuessed misjudges which addresses were chosen by the daemon")
	}
}
