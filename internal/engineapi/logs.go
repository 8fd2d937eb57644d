package engineapi

import (
	"encoding/binary"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// LogSelector says whose logs: a whole service or one task.
type LogSelector struct {
	ServiceID string
	TaskID    string
}

// LogOptions are the query parameters of the logs endpoints.
type LogOptions struct {
	Follow     bool
	Tail       int // < 0: all
	Since      time.Time
	Timestamps bool
	Stdout     bool
	Stderr     bool
	Details    bool
}

// LogMessage is one line of one task's output.
type LogMessage struct {
	Stream    int // 1 stdout, 2 stderr
	Time      time.Time
	Line      []byte
	NodeID    string
	ServiceID string
	TaskID    string
}

// LogSink receives messages; the Backend calls it from any goroutine.
type LogSink interface {
	Write(LogMessage) error
}

func (a *api) serviceLogs(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	s, err := a.resolveService(r.Context(), vars["id"])
	if err != nil {
		return err
	}
	return a.logs(w, r, LogSelector{ServiceID: s.ID})
}

func (a *api) taskLogs(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	t, err := a.resolveTask(r.Context(), vars["id"])
	if err != nil {
		return err
	}
	return a.logs(w, r, LogSelector{ServiceID: t.ServiceID, TaskID: t.ID})
}

func parseLogOptions(r *http.Request) (LogOptions, error) {
	q := r.URL.Query()
	o := LogOptions{Tail: -1, Follow: boolValue(r, "follow"), Timestamps: boolValue(r, "timestamps"),
		Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"), Details: boolValue(r, "details")}
	if !o.Stdout && !o.Stderr {
		return o, errdefs.Invalid("Bad parameters: you must choose at least one stream")
	}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return o, errdefs.Invalid("invalid tail %q: use a number of lines or \"all\"", t)
		}
		o.Tail = n
	}
	if s := q.Get("since"); s != "" && s != "0" {
		sec, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return o, errdefs.Invalid("invalid since %q: use a Unix timestamp", s)
		}
		o.Since = time.Unix(0, int64(sec*1e9))
	}
	return o, nil
}

func (a *api) logs(w http.ResponseWriter, r *http.Request, sel LogSelector) error {
	opts, err := parseLogOptions(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
	w.WriteHeader(http.StatusOK)
	sink := &muxSink{w: w, opts: opts}
	if f, ok := w.(http.Flusher); ok {
		sink.flush = f.Flush
		f.Flush()
	}
	return a.b.Logs(r.Context(), sel, opts, sink)
}

// muxSink writes Docker's multiplexed stream: an 8-byte header (stream,
// 0, 0, 0, big-endian length) before each frame, one frame per line, with
// the details and timestamp prefixes dockerd adds.
type muxSink struct {
	mu    sync.Mutex
	w     http.ResponseWriter
	opts  LogOptions
	flush func()
}

func (s *muxSink) Write(m LogMessage) error {
	if (m.Stream == 2 && !s.opts.Stderr) || (m.Stream != 2 && !s.opts.Stdout) {
		return nil
	}
	var line []byte
	if s.opts.Timestamps {
		line = append(line, m.Time.UTC().Format("2006-01-02T15:04:05.000000000Z07:00")...)
		line = append(line, ' ')
	}
	if s.opts.Details {
		line = append(line, "com.docker.swarm.node.id="+url.QueryEscape(m.NodeID)+
			",com.docker.swarm.service.id="+url.QueryEscape(m.ServiceID)+
			",com.docker.swarm.task.id="+url.QueryEscape(m.TaskID)+" "...)
	}
	line = append(line, m.Line...)
	if len(line) == 0 || line[len(line)-1] != '\n' {
		line = append(line, '\n')
	}
	stream := byte(1)
	if m.Stream == 2 {
		stream = 2
	}
	hdr := [8]byte{stream}
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(line)))
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := s.w.Write(line); err != nil {
		return err
	}
	if s.flush != nil {
		s.flush()
	}
	return nil
}
