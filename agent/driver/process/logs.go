//go:build unix

package process

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// Logs implements driver.Driver from TASKDIR/output.log. With Follow it
// polls the file until the shim has recorded the exit (the shim writes
// exit.json only after the program's output is all in the file) and the
// file is drained.
func (d *Driver) Logs(ctx context.Context, h driver.Handle, opts driver.LogOptions, out chan<- driver.LogMessage) error {
	dir, err := d.taskDir(h)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return errdefs.NotFound("process driver: no task %s", h.ID)
	}
	shimPID := shimPIDOf(h, dir)
	lr := &logReader{path: filepath.Join(dir, fileOutput)}
	defer lr.close()

	send := func(m driver.LogMessage) error {
		if !opts.Since.IsZero() && m.Time.Before(opts.Since) {
			return nil
		}
		select {
		case out <- m:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	// What is there now: all of it, or the last opts.Tail lines.
	var finished bool
	if opts.Follow {
		finished = d.finished(dir, shimPID)
	}
	if opts.Tail < 0 {
		if err := lr.read(send); err != nil {
			return err
		}
	} else {
		ring := make([]driver.LogMessage, 0, min(opts.Tail, 1024))
		start := 0
		err := lr.read(func(m driver.LogMessage) error {
			if opts.Tail == 0 || (!opts.Since.IsZero() && m.Time.Before(opts.Since)) {
				return nil
			}
			if len(ring) < opts.Tail {
				ring = append(ring, m)
			} else {
				ring[start] = m
				start = (start + 1) % len(ring)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i := range ring {
			if err := send(ring[(start+i)%len(ring)]); err != nil {
				return err
			}
		}
	}
	if !opts.Follow {
		return nil
	}

	interval := 10 * time.Millisecond
	t := time.NewTimer(interval)
	defer t.Stop()
	for !finished {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		// Look before reading: output written before the exit was recorded
		// is read below.
		finished = d.finished(dir, shimPID)
		n := lr.n
		if err := lr.read(send); err != nil {
			return err
		}
		if lr.n > n {
			interval = 10 * time.Millisecond
		} else if interval < 200*time.Millisecond {
			interval *= 2
		}
		t.Reset(interval)
	}
	return nil
}

func (d *Driver) finished(dir string, shimPID int) bool {
	running, _, _ := d.state(dir, shimPID)
	return !running
}

// logReader reads complete records from a growing JSON-lines file.
type logReader struct {
	path    string
	f       *os.File
	br      *bufio.Reader
	pending []byte // a record whose newline has not been written yet
	n       int    // records read
}

func (lr *logReader) close() {
	if lr.f != nil {
		lr.f.Close()
	}
}

// read passes every complete record appended since the last call to fn.
func (lr *logReader) read(fn func(driver.LogMessage) error) error {
	if lr.f == nil {
		f, err := os.Open(lr.path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // not created yet
		}
		if err != nil {
			return err
		}
		lr.f, lr.br = f, bufio.NewReaderSize(f, 64*1024)
	}
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if len(chunk) > 0 {
			if chunk[len(chunk)-1] != '\n' {
				lr.pending = append(lr.pending, chunk...)
			} else {
				line := chunk
				if len(lr.pending) > 0 {
					line = append(lr.pending, chunk...)
					lr.pending = lr.pending[:0]
				}
				if m, ok := parseRecord(line); ok {
					lr.n++
					if err := fn(m); err != nil {
						return err
					}
				}
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}

func parseRecord(line []byte) (driver.LogMessage, bool) {
	var rec logRecord
	if err := json.Unmarshal(bytes.TrimSpace(line), &rec); err != nil {
		return driver.LogMessage{}, false
	}
	return driver.LogMessage{Stream: rec.S, Time: rec.T, Line: rec.line()}, true
}
