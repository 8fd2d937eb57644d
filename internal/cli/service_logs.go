package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// The detail keys dockerd (and flotilla) put on every service log line.
const (
	logNodeKey    = "com.docker.swarm.node.id"
	logServiceKey = "com.docker.swarm.service.id"
	logTaskKey    = "com.docker.swarm.task.id"
)

type logsOpts struct {
	follow, timestamps, details bool
	noTaskIDs, noTrunc, raw     bool
	noResolve                   bool
	tail, since                 string
}

func newServiceLogsCommand(env *cliEnv) *cobra.Command {
	o := &logsOpts{}
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] SERVICE|TASK",
		Short: "Fetch the logs of a service or task",
		Long: "Fetch the logs of a service or task, merged from every node running its tasks.\n" +
			"When a node cannot be reached, the logs of the others are shown and a warning names it.",
		Args: exactArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		api, err := env.client()
		if err != nil {
			return err
		}
		return serviceLogs(cmd.Context(), api, cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], o)
	})
	flags := cmd.Flags()
	flags.BoolVarP(&o.follow, "follow", "f", false, "Follow log output")
	flags.StringVarP(&o.tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	flags.BoolVarP(&o.timestamps, "timestamps", "t", false, "Show timestamps")
	flags.StringVar(&o.since, "since", "", `Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	flags.BoolVar(&o.noTaskIDs, "no-task-ids", false, "Do not include task IDs in output")
	flags.BoolVar(&o.noTrunc, "no-trunc", false, "Do not truncate output")
	flags.BoolVar(&o.noResolve, "no-resolve", false, "Do not map IDs to Names in output")
	flags.BoolVar(&o.raw, "raw", false, "Do not neatly format logs")
	flags.BoolVar(&o.details, "details", false, "Show extra details provided to logs")
	return cmd
}

func serviceLogs(ctx context.Context, api apiClient, stdout, stderr io.Writer, ref string, o *logsOpts) error {
	if o.tail != "all" {
		if n, err := strconv.Atoi(o.tail); err != nil || n < 0 {
			return fmt.Errorf("invalid --tail %q: must be a number of lines or \"all\"", o.tail)
		}
	}
	f := &logFormatter{ctx: ctx, api: api, opts: o, padding: 1, tasks: map[string]swarm.Task{}, names: map[string]string{}}
	var (
		body io.ReadCloser
		tty  bool
	)
	svcRes, err := api.ServiceInspect(ctx, ref, client.ServiceInspectOptions{})
	if err == nil {
		svc := svcRes.Service
		f.names[svc.ID] = svc.Spec.Name
		if cs := svc.Spec.TaskTemplate.ContainerSpec; cs != nil {
			tty = cs.TTY
		}
		if r := svc.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
			f.padding = len(strconv.FormatUint(*r.Replicas, 10))
		}
		if tty && !o.raw {
			return errors.New("tty service logs only supported with --raw")
		}
		body, err = api.ServiceLogs(ctx, ref, client.ServiceLogsOptions{
			ShowStdout: true, ShowStderr: true, Since: o.since, Timestamps: o.timestamps,
			Follow: o.follow, Tail: o.tail, Details: o.details || !o.raw,
		})
	} else {
		if !cerrdefs.IsNotFound(err) {
			return err
		}
		tr, terr := api.TaskInspect(ctx, ref, client.TaskInspectOptions{})
		if terr != nil {
			if cerrdefs.IsNotFound(terr) {
				return fmt.Errorf("no such task or service: %s", ref)
			}
			return terr
		}
		t := tr.Task
		f.tasks[t.ID] = t
		if cs := t.Spec.ContainerSpec; cs != nil {
			tty = cs.TTY
		}
		f.padding = len(strconv.Itoa(t.Slot))
		if tty && !o.raw {
			return errors.New("tty service logs only supported with --raw")
		}
		body, err = api.TaskLogs(ctx, ref, client.TaskLogsOptions{
			ShowStdout: true, ShowStderr: true, Since: o.since, Timestamps: o.timestamps,
			Follow: o.follow, Tail: o.tail, Details: o.details || !o.raw,
		})
	}
	if err != nil {
		return err
	}
	defer body.Close()
	if tty {
		_, err := io.Copy(stdout, body)
		return err
	}
	return demuxLogs(body, func(stream byte, line []byte) error {
		switch stream {
		case streamSystemErr:
			// The daemon's word on the stream, e.g. a node it could not
			// reach: say it and go on with the rest.
			msg := strings.TrimRight(string(line), "\n")
			if msg != "" {
				fmt.Fprintln(stderr, msg)
			}
			return nil
		case streamStderr:
			_, err := stderr.Write(f.format(line))
			return err
		default:
			_, err := stdout.Write(f.format(line))
			return err
		}
	})
}

// Stream IDs of the multiplexed ("stdcopy") log stream.
const (
	streamStdin     = 0
	streamStdout    = 1
	streamStderr    = 2
	streamSystemErr = 3
)

// demuxLogs reads a multiplexed log stream and calls line for every
// complete line of each stream (a last line without newline included).
// A system-error frame is passed whole. A stream that is not multiplexed
// is passed on as stdout lines.
func demuxLogs(r io.Reader, line func(stream byte, b []byte) error) error {
	br := bufio.NewReaderSize(r, 32*1024)
	pending := map[byte]*bytes.Buffer{streamStdout: {}, streamStderr: {}}
	emit := func(stream byte, final bool) error {
		buf := pending[stream]
		for {
			i := bytes.IndexByte(buf.Bytes(), '\n')
			if i < 0 {
				break
			}
			l := append([]byte(nil), buf.Next(i+1)...)
			if err := line(stream, l); err != nil {
				return err
			}
		}
		if final && buf.Len() > 0 {
			l := append(append([]byte(nil), buf.Bytes()...), '\n')
			buf.Reset()
			return line(stream, l)
		}
		return nil
	}
	finish := func() error {
		if err := emit(streamStdout, true); err != nil {
			return err
		}
		return emit(streamStderr, true)
	}
	header := make([]byte, 8)
	for {
		if n, err := io.ReadFull(br, header); err != nil {
			if errors.Is(err, io.EOF) {
				return finish()
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				// A partial header: take it as text.
				pending[streamStdout].Write(header[:n])
				return finish()
			}
			return err
		}
		stream := header[0]
		if stream > streamSystemErr || header[1] != 0 || header[2] != 0 || header[3] != 0 {
			// Not multiplexed: plain text.
			pending[streamStdout].Write(header)
			if _, err := io.Copy(pending[streamStdout], br); err != nil {
				return err
			}
			return finish()
		}
		size := binary.BigEndian.Uint32(header[4:])
		frame := make([]byte, size)
		if _, err := io.ReadFull(br, frame); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return finish()
			}
			return err
		}
		switch stream {
		case streamSystemErr:
			if err := line(stream, frame); err != nil {
				return err
			}
		case streamStdin, streamStdout:
			pending[streamStdout].Write(frame)
			if err := emit(streamStdout, false); err != nil {
				return err
			}
		case streamStderr:
			pending[streamStderr].Write(frame)
			if err := emit(streamStderr, false); err != nil {
				return err
			}
		}
	}
}

// logFormatter prefixes log lines with the task they come from, docker
// style: "web.1.abcdef123456@node-1    | message".
type logFormatter struct {
	ctx     context.Context
	api     apiClient
	opts    *logsOpts
	padding int // digits of the highest slot, to align the bars

	tasks     map[string]swarm.Task // by ID, as inspected
	names     map[string]string     // service ID -> name
	nodeNames map[string]string     // node ID -> hostname
	prefixes  map[[3]string]string
}

// format turns one raw line into what the user sees. Lines that do not
// carry the swarm details are shown as they are.
func (f *logFormatter) format(line []byte) []byte {
	if f.opts.raw {
		return line
	}
	parts := 2
	if f.opts.timestamps {
		parts = 3
	}
	fields := bytes.SplitN(line, []byte(" "), parts)
	if len(fields) != parts {
		return line
	}
	detailsField := fields[parts-2]
	details, ok := parseLogDetails(string(detailsField))
	if !ok || details[logNodeKey] == "" || details[logServiceKey] == "" || details[logTaskKey] == "" {
		return line
	}
	key := [3]string{details[logNodeKey], details[logServiceKey], details[logTaskKey]}
	for _, k := range []string{logNodeKey, logServiceKey, logTaskKey} {
		delete(details, k)
	}
	var out bytes.Buffer
	if f.opts.timestamps {
		out.Write(fields[0])
		out.WriteByte(' ')
	}
	out.WriteString(f.prefix(key))
	out.WriteString("    | ")
	if f.opts.details && len(details) > 0 {
		kvs := make([]string, 0, len(details))
		for k, v := range details {
			kvs = append(kvs, k+"="+v)
		}
		sort.Strings(kvs)
		out.WriteString(strings.Join(kvs, ","))
		out.WriteByte(' ')
	}
	out.Write(fields[parts-1])
	return out.Bytes()
}

// prefix is "service.slot.taskid@node", padded; computed once per task.
func (f *logFormatter) prefix(key [3]string) string {
	if p, ok := f.prefixes[key]; ok {
		return p
	}
	nodeID, serviceID, taskID := key[0], key[1], key[2]
	node, service := nodeID, serviceID
	if !f.opts.noResolve {
		node = f.nodeName(nodeID)
		service = f.serviceName(serviceID)
	}
	name := service
	slot := -1
	if t, ok := f.task(taskID); ok {
		slot = t.Slot
		name += "." + strconv.Itoa(t.Slot)
	}
	if !f.opts.noTaskIDs {
		if f.opts.noTrunc {
			name += "." + taskID
		} else {
			name += "." + truncID(taskID)
		}
	}
	p := name + "@" + node
	if slot >= 0 {
		if pad := f.padding - len(strconv.Itoa(slot)); pad > 0 {
			p += strings.Repeat(" ", pad)
		}
	}
	if f.prefixes == nil {
		f.prefixes = map[[3]string]string{}
	}
	f.prefixes[key] = p
	return p
}

func (f *logFormatter) task(id string) (swarm.Task, bool) {
	if t, ok := f.tasks[id]; ok {
		return t, true
	}
	res, err := f.api.TaskInspect(f.ctx, id, client.TaskInspectOptions{})
	if err != nil {
		return swarm.Task{}, false
	}
	f.tasks[id] = res.Task
	return res.Task, true
}

func (f *logFormatter) serviceName(id string) string {
	if n, ok := f.names[id]; ok {
		return n
	}
	name := id
	if res, err := f.api.ServiceInspect(f.ctx, id, client.ServiceInspectOptions{}); err == nil && res.Service.Spec.Name != "" {
		name = res.Service.Spec.Name
	}
	f.names[id] = name
	return name
}

func (f *logFormatter) nodeName(id string) string {
	if f.nodeNames == nil {
		f.nodeNames = map[string]string{}
		if res, err := f.api.NodeList(f.ctx, client.NodeListOptions{}); err == nil {
			for _, n := range res.Items {
				f.nodeNames[n.ID] = n.Description.Hostname
			}
		}
	}
	if n := f.nodeNames[id]; n != "" {
		return n
	}
	return id
}

// parseLogDetails parses "k1=v1,k2=v2" with query-escaped keys and values,
// as the daemon writes log details.
func parseLogDetails(s string) (map[string]string, bool) {
	if s == "" {
		return nil, false
	}
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return nil, false
		}
		uk, err1 := url.QueryUnescape(k)
		uv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, false
		}
		out[uk] = uv
	}
	return out, true
}
