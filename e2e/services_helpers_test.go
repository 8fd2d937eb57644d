package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serviceTimeout bounds a CLI call that waits for a service to converge
// (create, update, scale and rm without --detach).
const serviceTimeout = 90 * time.Second

// ---------------------------------------------------------------------------
// Task processes of the process driver, found through /proc

// procStat is what /proc/PID/stat says of a process.
type procStat struct {
	state      byte
	pgrp, sess int
}

func readProcStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, false
	}
	// pid (comm) state ppid pgrp session ...; comm may hold spaces and ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 4 || f[0] == "" {
		return procStat{}, false
	}
	pgrp, err1 := strconv.Atoi(f[2])
	sess, err2 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil {
		return procStat{}, false
	}
	return procStat{state: f[0][0], pgrp: pgrp, sess: sess}, true
}

func procArgs(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

func procEnv(pid int) map[string]string {
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	env := map[string]string{}
	for _, kv := range strings.Split(string(b), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

// shimDir returns the --dir of a process-shim command line.
func shimDir(args []string) (string, bool) {
	if !slices.Contains(args, "process-shim") {
		return "", false
	}
	for i, a := range args {
		if a == "--" {
			break
		}
		if a == "--dir" && i+1 < len(args) {
			return args[i+1], true
		}
		if d, ok := strings.CutPrefix(a, "--dir="); ok {
			return d, true
		}
	}
	return "", false
}

// taskProc is a task's program as /proc shows it.
type taskProc struct {
	pid, shimPID int
	node         string // the node whose data dir holds the task
	taskID       string // the task directory's name
	args         []string
	env          map[string]string
}

func (p taskProc) String() string {
	return fmt.Sprintf("%s on %s: pid %d %q (slot %s)", p.taskID, p.node, p.pid, strings.Join(p.args, " "), p.env["FLOTILLA_TASK_SLOT"])
}

// pids lists the live PIDs of /proc.
func pids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// taskProcs finds the programs that the process driver runs for the given
// nodes: it looks for their shims (`process-shim --dir DATADIR/tasks/ID`)
// and, for each, the live process that leads a process group in the
// shim's session (the shim starts the program as a group leader) and
// whose PID the shim recorded (health checks lead groups there too).
func taskProcs(nodes ...*node) []taskProc {
	all := pids()
	type shim struct {
		node, task string
		program    int
	}
	shims := map[int]shim{}
	for _, pid := range all {
		dir, ok := shimDir(procArgs(pid))
		if !ok {
			continue
		}
		for _, n := range nodes {
			if filepath.Dir(dir) == filepath.Join(n.dataDir, "tasks") {
				b, _ := os.ReadFile(filepath.Join(dir, "pid"))
				program, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				shims[pid] = shim{n.name, filepath.Base(dir), program}
			}
		}
	}
	var out []taskProc
	for _, pid := range all {
		st, ok := readProcStat(pid)
		if !ok || st.state == 'Z' || st.pgrp != pid {
			continue
		}
		s, ok := shims[st.sess]
		if !ok || pid == st.sess || pid != s.program {
			continue
		}
		args := procArgs(pid)
		if args == nil {
			continue // exiting
		}
		out = append(out, taskProc{pid: pid, shimPID: st.sess, node: s.node, taskID: s.task, args: args, env: procEnv(pid)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].taskID < out[j].taskID })
	return out
}

// serviceProcs is taskProcs for the tasks of one service (by the
// FLOTILLA_SERVICE_NAME every task gets).
func serviceProcs(service string, nodes ...*node) []taskProc {
	return slices.DeleteFunc(taskProcs(nodes...), func(p taskProc) bool { return p.env["FLOTILLA_SERVICE_NAME"] != service })
}

// alive reports whether pid is a live (non-zombie) process.
func alive(pid int) bool {
	st, ok := readProcStat(pid)
	return ok && st.state != 'Z'
}

// killTaskProcesses SIGKILLs every process-shim whose task directory is
// under base and every process of those shims' sessions, and returns what
// it killed.
func killTaskProcesses(base string) []string {
	all := pids()
	shims := map[int]bool{}
	for _, pid := range all {
		if dir, ok := shimDir(procArgs(pid)); ok && strings.HasPrefix(dir, base+string(filepath.Separator)) {
			shims[pid] = true
		}
	}
	if len(shims) == 0 {
		return nil
	}
	var killed []string
	for _, pid := range all {
		st, ok := readProcStat(pid)
		if !ok || st.state == 'Z' || !(shims[pid] || shims[st.sess]) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, fmt.Sprintf("%d %s", pid, strings.Join(procArgs(pid), " ")))
		}
	}
	return killed
}

// ---------------------------------------------------------------------------
// Services through the CLI

// psRow is one task as `service ps --no-trunc --format` prints it.
type psRow struct {
	ID, Name, Node, Desired, Current, Error string
}

func (r psRow) running() bool {
	return r.Desired == "Running" && strings.HasPrefix(r.Current, "Running")
}

func (r psRow) String() string {
	return fmt.Sprintf("%s(%s on %s: %s/%s %s)", r.Name, r.ID, r.Node, r.Desired, r.Current, r.Error)
}

const psFormat = "{{.ID}}|{{.Name}}|{{.Node}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}"

// servicePs runs `service ps --no-trunc` on n and parses it.
func (n *node) servicePs(service string, extra ...string) ([]psRow, error) {
	out, _, err := n.CLI(append([]string{"service", "ps", "--no-trunc", "--format", psFormat, service}, extra...)...)
	if err != nil {
		return nil, err
	}
	var rows []psRow
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		f := strings.SplitN(l, "|", 6)
		if len(f) != 6 {
			return nil, fmt.Errorf("unexpected service ps line %q", l)
		}
		rows = append(rows, psRow{f[0], f[1], f[2], f[3], f[4], f[5]})
	}
	return rows, nil
}

// runningTasks returns the tasks of service that are meant to run; it
// fails unless there are exactly want of them, all Running, on nodes that
// satisfy onNode (when given).
func (n *node) runningTasks(service string, want int, onNode func(string) bool) ([]psRow, error) {
	rows, err := n.servicePs(service, "--filter", "desired-state=running")
	if err != nil {
		return nil, err
	}
	if len(rows) != want {
		return rows, fmt.Errorf("%d tasks of %s are meant to run, want %d: %v", len(rows), service, want, rows)
	}
	for _, r := range rows {
		if !r.running() {
			return rows, fmt.Errorf("task %v is not running; all: %v", r, rows)
		}
		if onNode != nil && !onNode(r.Node) {
			return rows, fmt.Errorf("task %v runs on %s; all: %v", r, r.Node, rows)
		}
	}
	return rows, nil
}

// waitRunning waits until exactly want tasks of service run (see
// runningTasks) and returns them.
func (n *node) waitRunning(t testing.TB, service string, want int, timeout time.Duration, onNode func(string) bool) []psRow {
	t.Helper()
	var rows []psRow
	eventually(t, timeout, func() (err error) {
		rows, err = n.runningTasks(service, want, onNode)
		return err
	})
	return rows
}

// replicas returns the REPLICAS column of `service ls` for service.
func (n *node) replicas(service string) (string, error) {
	out, _, err := n.CLI("service", "ls", "--format", "{{.Name}} {{.Replicas}}")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if name, r, ok := strings.Cut(l, " "); ok && name == service {
			return r, nil
		}
	}
	return "", fmt.Errorf("service ls does not list %s:\n%s", service, out)
}

func (n *node) waitReplicas(t testing.TB, service, want string) {
	t.Helper()
	eventually(t, convergeTimeout, func() error {
		got, err := n.replicas(service)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("service ls shows %s at %s, want %s", service, got, want)
		}
		return nil
	})
}

// mustService runs a CLI command that waits for a service to converge
// and fails t if it does not succeed.
func (n *node) mustService(t testing.TB, args ...string) cliResult {
	t.Helper()
	r := n.cliTimeout(serviceTimeout, args...)
	if r.err != nil {
		t.Fatalf("on %s (after %s): %v\nstdout:\n%s", n, r.elapsed.Round(time.Millisecond), r.err, r.stdout)
	}
	return r
}

// checkProcsMatch checks that the live programs of a service are exactly
// one per task in rows, each on the node that `service ps` names, and
// returns them by task ID.
func checkProcsMatch(rows []psRow, procs []taskProc) (map[string]taskProc, error) {
	byTask := map[string]taskProc{}
	for _, p := range procs {
		if prev, dup := byTask[p.taskID]; dup {
			return nil, fmt.Errorf("task %s has two programs: %v and %v", p.taskID, prev, p)
		}
		byTask[p.taskID] = p
	}
	if len(procs) != len(rows) {
		return nil, fmt.Errorf("%d programs run for %d tasks: programs %v, tasks %v", len(procs), len(rows), procs, rows)
	}
	for _, r := range rows {
		p, ok := byTask[r.ID]
		if !ok {
			return nil, fmt.Errorf("no program runs for task %v; programs: %v", r, procs)
		}
		if p.node != r.Node {
			return nil, fmt.Errorf("task %v runs on %s according to /proc", r, p.node)
		}
		if p.env["FLOTILLA_TASK_ID"] != r.ID {
			return nil, fmt.Errorf("program %v has FLOTILLA_TASK_ID=%q", p, p.env["FLOTILLA_TASK_ID"])
		}
	}
	return byTask, nil
}

// slotsOnce checks that no slot of a replicated service has two live
// programs, and that slots 1..want each have one.
func slotsOnce(procs []taskProc, want int) error {
	seen := map[string][]taskProc{}
	for _, p := range procs {
		s := p.env["FLOTILLA_TASK_SLOT"]
		seen[s] = append(seen[s], p)
	}
	for s, ps := range seen {
		if len(ps) > 1 {
			return fmt.Errorf("slot %s runs %d times: %v", s, len(ps), ps)
		}
	}
	for i := 1; i <= want; i++ {
		if len(seen[strconv.Itoa(i)]) != 1 {
			return fmt.Errorf("slot %d does not run; programs: %v", i, procs)
		}
	}
	if len(seen) != want {
		return fmt.Errorf("programs run for %d slots, want %d: %v", len(seen), want, procs)
	}
	return nil
}

// nodeNames is a set of node names, for runningTasks' onNode.
func nodeNames(nodes ...*node) func(string) bool {
	return func(name string) bool {
		return slices.ContainsFunc(nodes, func(n *node) bool { return n.name == name })
	}
}
