//go:build unix

package process

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/atomicfile"
)

// shimConfig is what the driver hands the shim in TASKDIR/config.json.
type shimConfig struct {
	TaskID      string            `json:"task_id"`
	ServiceID   string            `json:"service_id,omitempty"`
	ServiceName string            `json:"service_name,omitempty"`
	NodeID      string            `json:"node_id,omitempty"`
	Env         []string          `json:"env"`
	Dir         string            `json:"dir,omitempty"`
	UID         *uint32           `json:"uid,omitempty"`
	GID         *uint32           `json:"gid,omitempty"`
	Groups      []uint32          `json:"groups,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	// Health, with its defaults filled in, is run by the shim beside the
	// program (see runHealth).
	Health *driver.HealthCheck `json:"health,omitempty"`
}

// exitRecord is TASKDIR/exit.json.
type exitRecord struct {
	ExitCode   int       `json:"exit_code"`
	Err        string    `json:"err,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at"`
	// StartError is set when the program could not be started at all;
	// Invalid says the spec is at fault (no such file, permission denied...).
	StartError string `json:"start_error,omitempty"`
	Invalid    bool   `json:"invalid,omitempty"`
}

// logRecord is one line of TASKDIR/output.log.
type logRecord struct {
	T time.Time `json:"t"`
	S int       `json:"s"`
	L string    `json:"l,omitempty"`
	B []byte    `json:"b,omitempty"` // the line (base64 in JSON), when it is not valid UTF-8
}

// ShimCommand returns the hidden `process-shim` command. main registers it
// on the root command; Driver.Start runs it as
// `<ShimBinary> process-shim --dir TASKDIR -- PROGRAM ARGS...`.
func ShimCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:          ShimCommandName + " --dir TASKDIR -- PROGRAM [ARG...]",
		Short:        "Supervise one task of the process driver (internal)",
		Hidden:       true,
		Args:         cobra.MinimumNArgs(1),
		SilenceUsage: true,
		RunE: func(_ *cobra.Command, args []string) error {
			return RunShim(dir, args)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "task directory")
	_ = cmd.MarkFlagRequired("dir")
	cmd.Flags().SetInterspersed(false) // everything from PROGRAM on is the program's
	return cmd
}

// MaybeRunShim runs the shim and exits the process if os.Args[1] is
// "process-shim"; otherwise it returns at once. Call it first thing in a
// TestMain so that a test binary can serve as Options.ShimBinary.
func MaybeRunShim() {
	if len(os.Args) < 2 || os.Args[1] != ShimCommandName {
		return
	}
	cmd := ShimCommand()
	cmd.SetArgs(os.Args[2:])
	if err := cmd.Execute(); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// RunShim supervises argv (argv[0] is the program's path) in task directory
// dir until the program ends, then records its exit status. It returns an
// error only when it could not record anything.
func RunShim(dir string, argv []string) error {
	if dir == "" || len(argv) == 0 {
		return errors.New("process-shim: --dir and a program are required")
	}
	if err := writeFileAtomic(filepath.Join(dir, fileShimPID), []byte(strconv.Itoa(os.Getpid())+"\n")); err != nil {
		return err
	}
	var cfg shimConfig
	if b, err := os.ReadFile(filepath.Join(dir, fileConfig)); err == nil {
		if err := json.Unmarshal(b, &cfg); err != nil {
			return recordStartError(dir, fmt.Errorf("read %s: %w", fileConfig, err), false)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return recordStartError(dir, err, false)
	} else {
		cfg.Env = os.Environ()
	}
	logf, err := os.OpenFile(filepath.Join(dir, fileOutput), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return recordStartError(dir, err, false)
	}
	defer logf.Close()

	// Signals that arrive from now on are forwarded once the program runs.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	signal.Ignore(syscall.SIGPIPE)

	rOut, wOut, err := os.Pipe()
	if err != nil {
		return recordStartError(dir, err, false)
	}
	rErr, wErr, err := os.Pipe()
	if err != nil {
		return recordStartError(dir, err, false)
	}
	cmd := &exec.Cmd{
		Path:        argv[0],
		Args:        argv,
		Env:         cfg.Env,
		Dir:         cfg.Dir,
		Stdout:      wOut,
		Stderr:      wErr,
		SysProcAttr: programAttr(cfg),
	}
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	started := time.Now()
	err = cmd.Start()
	wOut.Close()
	wErr.Close()
	if err != nil {
		return recordStartError(dir, err, isSpecError(err))
	}
	pid := cmd.Process.Pid
	if err := writeFileAtomic(filepath.Join(dir, filePID), []byte(strconv.Itoa(pid)+"\n")); err != nil {
		fmt.Fprintf(os.Stderr, "process-shim: write pid: %v\n", err)
	}

	go func() {
		for s := range sigs {
			// The program leads its own process group: signal all of it.
			_ = syscall.Kill(-pid, s.(syscall.Signal))
		}
	}()

	lw := &logWriter{f: logf}
	var copiers sync.WaitGroup
	for _, p := range []struct {
		r      *os.File
		stream int
	}{{rOut, 1}, {rErr, 2}} {
		copiers.Add(1)
		go func() {
			defer copiers.Done()
			lw.copyLines(p.r, p.stream)
		}()
	}

	healthStop, healthDone := make(chan struct{}), make(chan struct{})
	if cfg.Health != nil {
		go func() {
			defer close(healthDone)
			runHealth(dir, cfg, started, healthStop)
		}()
	} else {
		close(healthDone)
	}

	werr := cmd.Wait()
	finished := time.Now()
	close(healthStop)
	<-healthDone
	// Whatever the program left behind in its process group dies with it,
	// which also closes the pipes.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	drained := make(chan struct{})
	go func() { copiers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
		// A descendant that left the group still holds a pipe: stop reading.
		rOut.Close()
		rErr.Close()
		<-drained
	}

	rec := exitRecord{StartedAt: started, FinishedAt: finished}
	if ps := cmd.ProcessState; ps != nil {
		rec.ExitCode, rec.Err = statusOf(ps)
	} else {
		rec.ExitCode, rec.Err = -1, fmt.Sprintf("wait: %v", werr)
	}
	return writeExit(dir, rec)
}

func statusOf(ps *os.ProcessState) (int, string) {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	switch {
	case !ok:
		if ps.ExitCode() == 0 {
			return 0, ""
		}
		return ps.ExitCode(), ps.String()
	case ws.Signaled():
		return 128 + int(ws.Signal()), "signal: " + ws.Signal().String()
	case ws.ExitStatus() == 0:
		return 0, ""
	}
	return ws.ExitStatus(), fmt.Sprintf("exit status %d", ws.ExitStatus())
}

// isSpecError reports whether a start failure is the spec's fault (the
// program cannot be run as given) rather than a transient condition.
func isSpecError(err error) bool {
	for _, e := range []error{syscall.ENOENT, syscall.EACCES, syscall.EPERM, syscall.ENOEXEC, syscall.ENOTDIR, syscall.EISDIR, syscall.ELOOP, syscall.ENAMETOOLONG} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func recordStartError(dir string, err error, invalid bool) error {
	rec := exitRecord{ExitCode: -1, Err: "start: " + err.Error(), FinishedAt: time.Now(), StartError: err.Error(), Invalid: invalid}
	if werr := writeExit(dir, rec); werr != nil {
		return fmt.Errorf("process-shim: %v (and recording it: %v)", err, werr)
	}
	return nil
}

func writeExit(dir string, rec exitRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, fileExit), append(b, '\n'))
}

func writeFileAtomic(path string, data []byte) error {
	return atomicfile.Write(path, data, 0o600)
}

// maxLine is where long lines are cut into several records (as docker does
// at 16 KiB).
const maxLine = 16 * 1024

type logWriter struct {
	mu  sync.Mutex
	f   *os.File
	buf []byte
}

func (w *logWriter) copyLines(r io.ReadCloser, stream int) {
	defer r.Close()
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			w.write(stream, line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

func (w *logWriter) write(stream int, line []byte) {
	rec := logRecord{T: time.Now().UTC(), S: stream}
	if utf8.Valid(line) {
		rec.L = string(line)
	} else {
		rec.B = line
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	w.buf = append(append(w.buf[:0], b...), '\n')
	// One write per record: a reader never sees half of one unless the
	// write itself is cut short, and then it waits for the newline.
	_, _ = w.f.Write(w.buf)
}

// decodeLine returns the bytes of a record's line.
func (r *logRecord) line() []byte {
	if r.B != nil {
		return r.B
	}
	return []byte(r.L)
}
