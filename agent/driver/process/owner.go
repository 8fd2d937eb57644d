//go:build unix

package process

import "os"

// Owner returns the user and group IDs a task of this driver runs as:
// its --user (names or numeric IDs, resolved on the node) or, without
// one, the daemon's own. The agent gives the task's secret and config
// files to this owner.
func Owner(user string) (uid, gid int, err error) {
	uid, gid = os.Getuid(), os.Getgid()
	if user == "" {
		return uid, gid, nil
	}
	u, g, _, _, err := resolveUser(user)
	if err != nil {
		return 0, 0, err
	}
	if u != nil {
		uid = int(*u)
	}
	if g != nil {
		gid = int(*g)
	}
	return uid, gid, nil
}
