package engineapi

import "testing"

// A backup is taken on the leader; a restore changes only the node that
// receives it.
func TestBackupRoutesForwarding(t *testing.T) {
	if !forwardsToLeader("GET", PathSwarmBackup) {
		t.Error("GET backup is not forwarded to the leader")
	}
	if forwardsToLeader("POST", PathSwarmRestore) {
		t.Error("POST restore is forwarded to the leader")
	}
}
