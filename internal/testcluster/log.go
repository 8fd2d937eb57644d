package testcluster

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// testLog sends log lines to t.Logf until the test's cleanup closes it;
// goroutines that outlive the test (a raft timer, an HTTP handler still
// draining) then log into the void instead of panicking the test binary.
type testLog struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

func newTestLog(t testing.TB) *testLog {
	l := &testLog{t: t}
	t.Cleanup(l.close)
	return l
}

func (l *testLog) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}

// Write takes one slog record (the text handler writes each in one call).
func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// logger returns a logger whose lines carry the node's name.
func (l *testLog) logger(level slog.Leveler, node string) *slog.Logger {
	h := slog.NewTextHandler(l, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.String(slog.TimeKey, a.Value.Time().Format("15:04:05.000"))
			}
			return a
		},
	})
	return slog.New(h).With("daemon", node)
}

// Logf logs a line of the harness itself, with a timestamp so it can be
// read against the nodes' logs.
func (l *testLog) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.t.Helper()
		l.t.Logf("%s testcluster: "+format, append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
}
