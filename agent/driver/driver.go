// Package driver is the worker-side interface between the agent and the
// thing that actually runs a task: a Docker container (driver/docker), a
// plain process under a small supervisor (driver/process), or nothing at all
// (driver/fake, for tests and benchmarks).
//
// The agent stores each task's Handle as JSON in its local task database, so
// a restarted agent can Recover, Wait for, Stop and Remove the tasks it started
// before the restart. Every driver therefore keeps the state a Handle refers to
// outside the agent's memory (the Docker Engine, files under a root
// directory), except the fake driver, which keeps it in the *fake.Driver value
// (share that value across simulated restarts).
package driver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// DefaultStopGracePeriod is the time a task gets between SIGTERM and SIGKILL
// when neither the spec nor the caller says otherwise (docker's default).
const DefaultStopGracePeriod = 10 * time.Second

// Spec is what a driver needs to run one task.
type Spec struct {
	TaskID, ServiceID, ServiceName, NodeID string
	Slot                                   int
	// Image is, for docker, an image reference (which must be present on the
	// node); for process, the program (an absolute path or a name looked up in
	// PATH).
	Image string
	// Command is, for docker, the entrypoint override; for process, if set,
	// the program and its leading arguments (replacing Image).
	Command         []string
	Args            []string
	Env             []string          // K=V
	Dir             string            // working directory
	Labels          map[string]string // user labels (container labels for docker)
	Hostname        string
	User            string
	NanoCPUs        int64         // CPU limit in 1e-9 CPUs (0 = none)
	MemoryBytes     int64         // memory limit (0 = none)
	StopGracePeriod time.Duration // 0 = DefaultStopGracePeriod
	// Network is, for docker, the container's network mode ("host" to
	// share the node's network; "" for the engine's default bridge).
	// The process driver always runs on the node's network.
	Network string
	// Ports are the target ports the routing mesh reaches the task on.
	Ports []Port
	// Networks are the swarm networks the task is on, with its address
	// on each; none leaves it on the node's default network.
	Networks []NetworkAttachment
	// DNS is the resolver (host:port) that answers the names of the
	// task's networks; "" when the task is on none. DNSOnBridge asks a
	// driver that makes a bridge per network for the gateway of the
	// task's first one, where the node's DNS server listens.
	DNS string
	// Healthcheck is the spec's health check; nil leaves docker tasks to
	// their image's HEALTHCHECK and process tasks unchecked.
	Healthcheck *HealthCheck
	// Mounts are the task's filesystem mounts, in the spec's order.
	Mounts []Mount
	// Files are the task's secret and config files, made by the agent in
	// memory-backed storage: docker bind-mounts each read-only at Target;
	// the process driver ignores them (the task gets their directory in
	// its environment instead).
	Files []File
}

// Mount types.
const (
	MountBind   = "bind"
	MountVolume = "volume"
	MountTmpfs  = "tmpfs"
)

// Mount is one filesystem mount of a task: a path on the node (bind), a
// volume of the node's (named by Source, or anonymous: Source ""), or a
// memory-backed directory (tmpfs), at Target in the task's filesystem.
type Mount struct {
	Type     string // MountBind, MountVolume or MountTmpfs
	Source   string // bind: an absolute path on the node; volume: its name
	Target   string // absolute path in the task
	ReadOnly bool
	// Propagation is a bind mount's propagation (rprivate when empty).
	Propagation string
	// Volume options: the volume driver ("" for local), its options, the
	// labels of a volume the mount creates, and NoCopy not to fill a new
	// volume with what the image has at Target.
	VolumeDriver  string
	VolumeOptions map[string]string
	VolumeLabels  map[string]string
	NoCopy        bool
	// Tmpfs options: size in bytes (0 = the system's default) and mode
	// (0 = 1777).
	TmpfsSize int64
	TmpfsMode uint32
}

// File is one secret or config file of a task: Source on the node,
// Target in the container.
type File struct {
	Source, Target string
}

// Port is a target port of a task, e.g. 80/tcp. A port published in host
// mode is also bound on the node, at HostIP:Published (HostIP "" for all
// addresses; Published 0 for a free port).
type Port struct {
	Target    uint32
	Proto     string // "tcp"
	Host      bool
	HostIP    string
	Published uint32
}

// String is the target port and protocol, "80/tcp".
func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Target, p.Proto) }

// DNSOnBridge is Spec.DNS for "the gateway of the task's first bridge".
const DNSOnBridge = "0.0.0.0:53"

// NetworkAttachment is a task's place on a swarm network. Addr is never
// configured on an interface: the node's mesh captures connections to the
// network's subnet and forwards them to where the task really listens.
type NetworkAttachment struct {
	ID, Name string
	Addr     netip.Prefix // the task's address, with the subnet's length
}

// TaskLoopback is the loopback address a task without a network namespace
// of its own (a process task) listens on for its swarm networks: 127.x.y.z
// from the low 24 bits of its address on its first network, so it is
// unique in the cluster for addresses of 10.0.0.0/8 (Docker's default
// pool), and the mesh reaches it on any port. ok is false off networks.
func TaskLoopback(nets []NetworkAttachment) (addr netip.Addr, ok bool) {
	if len(nets) == 0 || !nets[0].Addr.Addr().Is4() {
		return netip.Addr{}, false
	}
	a := nets[0].Addr.Addr().As4()
	return netip.AddrFrom4([4]byte{127, a[1], a[2], a[3]}), true
}

// NodeNetworked is a driver whose tasks share the node's network (no
// namespace of their own, as the process driver's): the agent starts a DNS
// server for each of its tasks on swarm networks and gives it in Spec.DNS.
type NodeNetworked interface{ NodeNetworked() }

// Addresser is a driver whose tasks have addresses of their own (a
// container's on its bridges): connections and DNS queries from them
// tell which task, so which networks, they come from.
type Addresser interface {
	Addresses(ctx context.Context, h Handle) ([]netip.Addr, error)
}

// Endpointer is a driver whose tasks the routing mesh can reach: Endpoint
// is the address (host:port) on this node where the task listens on a
// target port.
type Endpointer interface {
	Endpoint(ctx context.Context, h Handle, p Port) (string, error)
}

// Validate checks what every driver needs: a task ID, and an image or a
// command. The error is errdefs.Invalid.
func (s Spec) Validate() error {
	if s.TaskID == "" {
		return errdefs.Invalid("task spec: task ID is empty")
	}
	if s.Image == "" && len(s.Command) == 0 {
		return errdefs.Invalid("task %s: neither an image nor a command is set", s.TaskID)
	}
	if len(s.Command) > 0 && s.Command[0] == "" {
		return errdefs.Invalid("task %s: the command's program is empty", s.TaskID)
	}
	for _, kv := range s.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return errdefs.Invalid("task %s: environment entry %q is not K=V", s.TaskID, kv)
		}
	}
	for _, m := range s.Mounts {
		if err := m.validate(); err != nil {
			return errdefs.Invalid("task %s: %v", s.TaskID, err)
		}
	}
	if s.NanoCPUs < 0 || s.MemoryBytes < 0 || s.StopGracePeriod < 0 {
		return errdefs.Invalid("task %s: negative resource limit or grace period", s.TaskID)
	}
	return nil
}

// localVolumeName is the local volume driver's rule for volume names.
var localVolumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func (m Mount) validate() error {
	if !path.IsAbs(m.Target) || path.Clean(m.Target) == "/" {
		return fmt.Errorf("invalid mount target %q: must be an absolute path other than /", m.Target)
	}
	switch m.Type {
	case MountBind:
		if !path.IsAbs(m.Source) {
			return fmt.Errorf("invalid bind mount source, must be an absolute path: %s", m.Source)
		}
	case MountVolume:
		if m.Source != "" && (m.VolumeDriver == "" || m.VolumeDriver == "local") && !localVolumeName.MatchString(m.Source) {
			return fmt.Errorf("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed", m.Source)
		}
	case MountTmpfs:
		if m.Source != "" {
			return errors.New("invalid tmpfs source, source must be empty")
		}
	default:
		return fmt.Errorf("invalid mount type %q", m.Type)
	}
	return nil
}

// GracePeriod is StopGracePeriod with the default applied.
func (s Spec) GracePeriod() time.Duration {
	if s.StopGracePeriod <= 0 {
		return DefaultStopGracePeriod
	}
	return s.StopGracePeriod
}

// TaskName is the name docker gives a task's container:
// <service>.<slot>.<taskID>, or <service>.<nodeID>.<taskID> for tasks of a
// global service (slot 0), as swarm mode does.
func (s Spec) TaskName() string {
	svc := s.ServiceName
	if svc == "" {
		svc = "task"
	}
	mid := strconv.Itoa(s.Slot)
	if s.Slot == 0 && s.NodeID != "" {
		mid = s.NodeID
	}
	return svc + "." + mid + "." + s.TaskID
}

// StopTimeout turns the timeout given to Driver.Stop into the grace period
// to apply: 0 means DefaultStopGracePeriod, a negative value means no grace
// (kill at once).
func StopTimeout(timeout time.Duration) time.Duration {
	switch {
	case timeout == 0:
		return DefaultStopGracePeriod
	case timeout < 0:
		return 0
	}
	return timeout
}

// Handle identifies a running task across agent restarts; the agent stores
// it as JSON in its local task DB.
type Handle struct {
	Driver    string
	ID        string
	PID       int
	StartedAt time.Time
	Extra     map[string]string `json:",omitempty"`
}

// ExitStatus is how a task ended.
type ExitStatus struct {
	ExitCode  int
	OOMKilled bool
	// Err describes a non-zero end ("exit status 2", "signal: killed",
	// "OOM killed"); empty when the task exited with status 0.
	Err        string
	FinishedAt time.Time
}

// Failed reports whether the task did not end with status 0.
func (st ExitStatus) Failed() bool { return st.ExitCode != 0 || st.OOMKilled || st.Err != "" }

func (st ExitStatus) String() string {
	if st.Err != "" {
		return st.Err
	}
	return fmt.Sprintf("exit status %d", st.ExitCode)
}

// LogOptions selects a task's output.
type LogOptions struct {
	Follow bool
	Since  time.Time // zero = from the beginning
	Tail   int       // number of last lines; <0 = all, 0 = none (then only new lines with Follow)
	// Timestamps is for the consumer's formatting: every LogMessage carries its
	// Time whatever this says.
	Timestamps bool
}

// Log streams.
const (
	Stdout = 1
	Stderr = 2
)

// LogMessage is one line of a task's output.
type LogMessage struct {
	Stream int // 1 stdout, 2 stderr
	Time   time.Time
	Line   []byte // without trailing newline
}

// Driver runs tasks. All methods are safe for concurrent use.
type Driver interface {
	Name() string
	// Start creates and starts the task; returns once it is running. Errors
	// are classified with internal/errdefs: errdefs.Invalid for a bad spec,
	// e.g. image missing locally or program not found (the task will be
	// rejected); errdefs.Conflict if a task with this ID already exists;
	// others are failures.
	Start(ctx context.Context, spec Spec) (Handle, error)
	// Wait blocks until the task exits (or ctx ends) — also for a handle
	// recovered after an agent restart. errdefs.NotFound if the task is gone.
	Wait(ctx context.Context, h Handle) (ExitStatus, error)
	// Stop asks the task to stop (SIGTERM), kills it after timeout (see
	// StopTimeout: 0 = default grace, <0 = kill at once), and returns once it
	// has exited; no error if already stopped or gone.
	Stop(ctx context.Context, h Handle, timeout time.Duration) error
	// Remove deletes what Start created (container, log files), killing the
	// task first if it still runs; no error if already gone.
	Remove(ctx context.Context, h Handle) error
	// Recover re-attaches after an agent restart: reports whether the task is
	// still running (false + exit status if it ended meanwhile,
	// errdefs.NotFound if it is gone).
	Recover(ctx context.Context, h Handle) (running bool, st ExitStatus, err error)
	// Logs sends the task's output to out until done (or, with Follow, until
	// ctx ends or the task exits and its output is drained). Logs never
	// closes out: its return says the stream is over (nil when the output
	// was sent in full, ctx.Err() when ctx ended first).
	Logs(ctx context.Context, h Handle, opts LogOptions, out chan<- LogMessage) error
}

// Listed is a task found by a Lister.
type Listed struct {
	TaskID  string
	Handle  Handle
	Running bool
}

// Lister is implemented by drivers that can enumerate the tasks they started
// for a node, so an agent can find tasks it holds no record of (it died
// between Start and saving the handle) and remove them.
type Lister interface {
	List(ctx context.Context, nodeID string) ([]Listed, error)
}
