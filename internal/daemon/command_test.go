package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A Raft timeout out of range is refused before anything is created.
func TestDaemonRefusesBadRaftTimeout(t *testing.T) {
	for _, v := range []string{"5ms", "2m", "0s"} {
		dir := filepath.Join(t.TempDir(), "data")
		cmd := NewCommand()
		cmd.SetArgs([]string{"--data-dir", dir, "-H", "unix://" + filepath.Join(t.TempDir(), "api.sock"), "--raft-heartbeat-timeout", v})
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), "--raft-heartbeat-timeout "+v) {
			t.Errorf("--raft-heartbeat-timeout %s: err = %v, want a refusal naming the flag", v, err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("--raft-heartbeat-timeout %s: the data dir was created (%v)", v, err)
		}
	}
}
