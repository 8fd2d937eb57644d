package raftnode

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

type stringer string

func (s stringer) String() string { return string(s) }

// Raft's hclog lines land in the node's slog logger, in its format and
// with its attributes; raft's info and debug lines only at debug.
func TestHCLoggerBridgesToSlog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", "n1", "component", "raft")
	hl := newHCLogger(log)
	hl.Named("net").Warn("failed to contact", "server-id", "n2", "error", "connection refused",
		"node", stringer("Node at 127.0.0.1:1 [Candidate]"), "servers", hclog.Fmt("%+v", []int{1, 2}))
	hl.Info("entering follower state")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("at info, want only the warning, got %d lines:\n%s", len(lines), buf.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatalf("not JSON: %q: %v", lines[0], err)
	}
	for k, want := range map[string]any{"level": "WARN", "msg": "failed to contact", "node": "n1", "component": "raft",
		"logger": "raft.net", "server-id": "n2", "error": "connection refused",
		"raft_node": "Node at 127.0.0.1:1 [Candidate]", "servers": "[1 2]"} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v (line %s)", k, got[k], want, lines[0])
		}
	}

	buf.Reset()
	debug := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hl = newHCLogger(debug)
	hl.Info("entering follower state")
	hl.Debug("sending heartbeat")
	hl.Trace("every rpc")
	if s := buf.String(); !strings.Contains(s, "level=INFO msg=\"entering follower state\"") ||
		!strings.Contains(s, "level=DEBUG msg=\"sending heartbeat\"") || strings.Contains(s, "every rpc") {
		t.Errorf("at debug, want raft's info and debug lines but not trace, got:\n%s", s)
	}
}
