package raftnode

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// newHCLogger is the hclog.Logger that hashicorp/raft and raft-wal log
// through: every line goes to log (so it carries the node and
// component=raft, in the daemon's format), with raft's own subsystem name
// as the logger attribute. Raft's info lines (elections, peers) are
// frequent and were never shown; they and its debug lines appear only when
// log shows debug.
func newHCLogger(log *slog.Logger) hclog.Logger {
	if log == nil {
		log = slog.Default()
	}
	minLevel := hclog.Warn
	if log.Enabled(context.Background(), slog.LevelDebug) {
		minLevel = hclog.Debug
	}
	// The intercept logger's own output is off; its sink sees every line.
	hl := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "raft", Level: hclog.Off, Output: io.Discard})
	hl.RegisterSink(slogSink{log: log, min: minLevel})
	return hl
}

// slogSink forwards hclog lines to a slog.Logger.
type slogSink struct {
	log *slog.Logger
	min hclog.Level
}

func (s slogSink) Accept(name string, level hclog.Level, msg string, args ...any) {
	if level < s.min {
		return
	}
	lvl := slog.LevelError
	switch level {
	case hclog.Trace, hclog.Debug:
		lvl = slog.LevelDebug
	case hclog.Info:
		lvl = slog.LevelInfo
	case hclog.Warn:
		lvl = slog.LevelWarn
	}
	attrs := append(make([]any, 0, len(args)+2), "logger", name)
	for i, a := range args {
		if i%2 == 0 {
			if k, ok := a.(string); ok && reservedKeys[k] {
				a = "raft_" + k // raft's "node" is itself, not the node's ID
			}
		} else {
			a = hcValue(a)
		}
		attrs = append(attrs, a)
	}
	s.log.Log(context.Background(), lvl, msg, attrs...)
}

// reservedKeys are the attributes the daemon's lines carry themselves.
var reservedKeys = map[string]bool{"time": true, "level": true, "msg": true, "node": true, "component": true, "logger": true}

// hcValue renders a value as hclog would: its Fmt values formatted, and
// what has a String method (raft's *Raft: "Node at ADDR [Leader]") as
// that string rather than its fields.
func hcValue(v any) any {
	switch v := v.(type) {
	case hclog.Format:
		if len(v) > 0 {
			if f, ok := v[0].(string); ok {
				return fmt.Sprintf(f, v[1:]...)
			}
		}
		return fmt.Sprint(v...)
	case error:
		return v
	case fmt.Stringer:
		return v.String()
	}
	return v
}
