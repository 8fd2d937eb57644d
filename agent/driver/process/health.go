//go:build unix

package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/flotilla-org/flotilla/agent/driver"
)

// Docker's limits on what a health check leaves behind.
const (
	maxHealthOutput = 4096 // bytes of a check's output kept
	maxHealthLog    = 5    // results kept
)

// healthRecord is TASKDIR/health.json, written by the shim after every
// check (Docker's State.Health).
type healthRecord struct {
	Status        driver.HealthStatus `json:"status"`
	FailingStreak int                 `json:"failing_streak"`
	Log           []healthResult      `json:"log,omitempty"`
}

type healthResult struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exit_code"`
	Output   string    `json:"output"`
}

func (r healthResult) String() string {
	if r.ExitCode == -1 { // did not run to an exit: the output says why
		return r.Output
	}
	if r.Output == "" {
		return fmt.Sprintf("exit status %d", r.ExitCode)
	}
	return fmt.Sprintf("exit status %d: %s", r.ExitCode, r.Output)
}

// runHealth checks the program's health until stop is closed, with
// Docker's semantics: a check every Interval (every StartInterval while
// the task has not been healthy yet within StartPeriod); a check that
// exits 0 makes the task healthy; Retries consecutive failures make it
// unhealthy, except that failures before the first success within
// StartPeriod do not count. The shim only records; the agent acts.
func runHealth(dir string, cfg shimConfig, started time.Time, stop <-chan struct{}) {
	hc := cfg.Health.WithDefaults()
	rec := healthRecord{Status: driver.HealthStarting}
	writeHealth(dir, rec)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-stop; cancel() }()
	for {
		wait := hc.Interval
		if rec.Status == driver.HealthStarting && time.Since(started) < hc.StartPeriod {
			wait = hc.StartInterval
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		res := probe(ctx, hc, cfg)
		if ctx.Err() != nil {
			return // the program ended during the check: its result means nothing
		}
		rec.Log = append(rec.Log, res)
		if len(rec.Log) > maxHealthLog {
			rec.Log = rec.Log[len(rec.Log)-maxHealthLog:]
		}
		switch {
		case res.ExitCode == 0:
			rec.Status, rec.FailingStreak = driver.HealthHealthy, 0
		case rec.Status == driver.HealthStarting && time.Since(started) < hc.StartPeriod:
			// Still starting up: the failure does not count.
		default:
			rec.FailingStreak++
			if rec.FailingStreak >= hc.Retries {
				rec.Status = driver.HealthUnhealthy
			}
		}
		writeHealth(dir, rec)
	}
}

// probe runs the check once beside the program: same user, environment
// and working directory, in its own process group so a timeout kills all
// of it and nothing of the program.
func probe(ctx context.Context, hc driver.HealthCheck, cfg shimConfig) healthResult {
	res := healthResult{Start: time.Now()}
	argv := []string{"/bin/sh", "-c", hc.Test[1]}
	if hc.Test[0] == "CMD" {
		argv = hc.Test[1:]
	}
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	out := &cappedBuffer{max: maxHealthOutput}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if path, err := lookPath(argv[0], envValue(cfg.Env, "PATH")); err == nil {
		cmd.Path, cmd.Err = path, nil
	}
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = cfg.Env, cfg.Dir, out, out
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.SysProcAttr = programAttr(cfg)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A check that leaves a child holding its output must not hang us.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	res.End = time.Now()
	var ee *exec.ExitError
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		res.ExitCode, res.Output = -1, fmt.Sprintf("Health check exceeded timeout (%s)", hc.Timeout)
	case err == nil:
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
		if res.ExitCode < 0 { // killed by a signal
			res.ExitCode = -1
		}
		res.Output = out.String()
	default:
		res.ExitCode, res.Output = -1, "cannot run the health check: "+err.Error()
	}
	if err == nil {
		res.Output = out.String()
	}
	return res
}

// lookPath finds a check's program in the task's PATH, not the shim's.
func lookPath(prog, path string) (string, error) {
	if filepath.IsAbs(prog) || path == "" {
		return prog, nil
	}
	for _, d := range filepath.SplitList(path) {
		p := filepath.Join(d, prog)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fs.ErrNotExist
}

func writeHealth(dir string, rec healthRecord) {
	b, err := json.Marshal(rec)
	if err == nil {
		err = writeFileAtomic(filepath.Join(dir, fileHealth), b)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "process-shim: record health: %v\n", err)
	}
}

// cappedBuffer keeps the first max bytes written to it.
type cappedBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *cappedBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.b)
}

// Health implements driver.HealthChecker from the shim's health.json.
func (d *Driver) Health(_ context.Context, h driver.Handle) (driver.Health, error) {
	dir, err := d.taskDir(h)
	if err != nil {
		return driver.Health{}, err
	}
	b, err := os.ReadFile(filepath.Join(dir, fileHealth))
	if errors.Is(err, fs.ErrNotExist) {
		// Not written yet (or no check): the task's config says which.
		cb, cerr := os.ReadFile(filepath.Join(dir, fileConfig))
		if cerr != nil {
			return driver.Health{}, fmt.Errorf("process driver: task %s: %w", h.ID, cerr)
		}
		var cfg shimConfig
		if err := json.Unmarshal(cb, &cfg); err != nil {
			return driver.Health{}, fmt.Errorf("process driver: task %s: %s: %w", h.ID, fileConfig, err)
		}
		if cfg.Health == nil {
			return driver.Health{}, nil
		}
		return driver.Health{Status: driver.HealthStarting}, nil
	}
	if err != nil {
		return driver.Health{}, fmt.Errorf("process driver: task %s: %w", h.ID, err)
	}
	var rec healthRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return driver.Health{}, fmt.Errorf("process driver: task %s: %s: %w", h.ID, fileHealth, err)
	}
	out := driver.Health{Status: rec.Status, FailingStreak: rec.FailingStreak}
	if n := len(rec.Log); n > 0 {
		out.Last = rec.Log[n-1].String()
	}
	return out, nil
}
