package daemon

import (
	"fmt"
	"io"
	"log/slog"
)

// newLogger makes the daemon's root logger from --log-format and
// --log-level. The root carries no component: each subsystem adds its own
// once (withComponent), so no line holds two.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}

// withComponent is the logger of one subsystem: root (which may carry the
// node's ID) with its name as the component attribute.
func withComponent(root *slog.Logger, name string) *slog.Logger {
	return root.With("component", name)
}
