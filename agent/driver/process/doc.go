// Package process is the task driver for machines without Docker: a task is
// a plain program (command, arguments, environment, working directory, user)
// run under a small supervisor, the process shim, so that it survives a
// restart of the agent and its exit status is never lost.
//
// The program is Spec.Command[0] when a Command is set, else Spec.Image:
// an absolute path, a path relative to the working directory, or a name
// looked up in PATH. Because the docker CLI and the moby client add
// ":latest" to an image reference without a tag, an Image with no '/' that
// ends in ":latest" is looked up without that suffix ("sleep:latest" runs
// sleep).
//
// Start runs `<ShimBinary> process-shim --dir TASKDIR -- PROGRAM ARGS...` in
// a new session (setsid). The shim (ShimCommand, registered by main as a
// hidden command) reads TASKDIR/config.json (environment, working directory,
// user), starts the program in its own process group, and keeps:
//
//	TASKDIR/shim.pid    the shim's PID
//	TASKDIR/pid         the program's PID (= its process group), written once it runs
//	TASKDIR/output.log  stdout and stderr as JSON lines {"t": RFC3339Nano, "s": 1|2, "l": "line"}
//	                    ("b" holds base64 instead of "l" when a line is not UTF-8)
//	TASKDIR/exit.json   the exit status, written when the program has ended
//	TASKDIR/shim.log    the shim's own diagnostics
//	TASKDIR/health.json the health check's status and last results (if the task has one)
//
// SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to the shim are
// forwarded to the program's process group. When the program ends, whatever
// is left of its process group is killed (as when a container's init exits),
// exit.json is written and the shim exits. On Linux the program also gets
// SIGKILL if the shim itself dies (PR_SET_PDEATHSIG).
//
// Both stdout and stderr go to one file so that their interleaving is kept;
// the log is not rotated (as docker's json-file driver by default).
//
// The driver keeps no state in memory: Wait polls exit.json and the shim's
// liveness (is the PID alive and is its /proc/PID/cmdline our shim for this
// task directory?), so it works the same for a handle recovered after an
// agent restart. Start, which has the shim as its own child, judges it by
// wait4 alone until the shim has written the program's PID or its exit: a
// freshly exec'd process can briefly show an empty command line. A program
// that exits at once is a normal start followed by an exit. The agent must not kill its whole control group when it
// stops (systemd: KillMode=process or mixed), or the tasks die with it.
//
// Health checks (Spec.Healthcheck with ["CMD", ...] or ["CMD-SHELL", ...])
// run in the shim, beside the program, as Docker runs them beside a
// container: same user, environment and working directory (CMD-SHELL via
// /bin/sh -c), each check in its own process group (killed whole on
// timeout), with Docker's interval, timeout, retries, start period and
// start interval semantics and defaults. The shim only records the result
// in health.json (Driver.Health reads it); the agent decides what an
// unhealthy task means. Because the shim runs them, checks go on while
// the agent restarts. A check with no command (timings only) means no
// check here: there is no image to take a HEALTHCHECK from.
//
// Mounts: a plain process has no mount namespace, so a task's mounts are
// node paths it is told, one variable per mount (MountEnv):
// FLOTILLA_MOUNT_<TARGET> (/var/lib/db → FLOTILLA_MOUNT_VAR_LIB_DB) holds
// the bind's source itself (a missing one fails the task with the
// engine's words: bind source path does not exist), a named volume's
// VolumesDir/NAME/_data (made on first use, kept after the task, its
// labels in VolumesDir/NAME/volume.json), an anonymous volume's
// TASKDIR/volumes/N or a tmpfs's TASKDIR/tmpfs/N (both removed with the
// task; the tmpfs is a real tmpfs with the size and mode asked for when
// the node runs as root, else a plain directory with the mode). What
// needs a namespace is refused: read-only mounts, bind propagation,
// volume drivers other than local, volume options.
//
// Limits: NanoCPUs and MemoryBytes are not enforced by this driver (there
// is no portable, unprivileged way; RLIMIT_AS would break many programs), and
// Hostname is ignored. The program's environment is Spec.Env on top of PATH
// (the agent's) and HOME (the user's); the agent's other variables are not
// passed on. The default working directory is "/".
package process

// Name is the driver name carried in handles.
const Name = "process"

// ShimCommandName is the name of the hidden command that runs the shim.
const ShimCommandName = "process-shim"

// Options configure a Driver.
type Options struct {
	// Root is the directory holding one subdirectory per task. Required.
	Root string
	// ShimBinary is the executable that has ShimCommand registered as a
	// subcommand (ShimBinary process-shim ...). Default: os.Executable().
	ShimBinary string
	// VolumesDir holds the node's named volumes, one directory each
	// (VolumesDir/NAME/_data), made on first use and kept. Empty: tasks
	// with named volumes are refused.
	VolumesDir string
}

// File names inside a task directory.
const (
	fileConfig  = "config.json"
	fileShimPID = "shim.pid"
	filePID     = "pid"
	fileOutput  = "output.log"
	fileExit    = "exit.json"
	fileShimLog = "shim.log"
	fileHealth  = "health.json"
)
