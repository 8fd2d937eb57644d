// Package gcetest emulates the parts of Google Compute Engine that the gce
// package uses: the metadata server, one listener per instance (each
// daemon's GCE_METADATA_HOST) over one shared project, and the Compute API
// calls that read and write the project metadata. It keeps the rules of the
// real servers that matter to callers: the Metadata-Flavor header, ETags
// and wait_for_change, a bearer token on Compute calls, and
// setCommonInstanceMetadata as a compare-and-set on a fingerprint that
// changes with every write.
package gcetest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Item is one metadata key/value.
type Item struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Write is one accepted change of the project metadata.
type Write struct {
	By      string            // instance whose token made the call; "admin" for SetProjectAttr
	At      time.Time         //
	Changed map[string]string // keys added or changed, with their new values
	Deleted []string
}

// Instance is one emulated VM.
type Instance struct {
	Name  string
	IP    string
	Zone  string
	ID    uint64
	Attrs map[string]string
	// Host is the host:port of this instance's metadata server.
	Host string
}

// Server is the emulated project.
type Server struct {
	Project string
	Numeric string

	mu          sync.Mutex
	items       []Item
	fingerprint string
	changed     chan struct{} // closed and replaced on every change
	instances   map[string]*Instance
	tokens      map[string]string // access token -> instance name
	writes      []Write
	conflicts   int // writes refused for a stale fingerprint
	gather      *gather
	ops         map[string]bool // operation name -> done
	servers     []*http.Server
	computeURL  string
	nextID      uint64
}

// New starts the Compute API endpoint of project on 127.0.0.1.
func New(project string) (*Server, error) {
	s := &Server{Project: project, Numeric: "424242424242", fingerprint: newFingerprint(),
		changed: make(chan struct{}), instances: map[string]*Instance{}, tokens: map[string]string{},
		ops: map[string]bool{}, nextID: 7000000000000000000}
	addr, err := s.serve(http.HandlerFunc(s.serveCompute))
	if err != nil {
		return nil, err
	}
	s.computeURL = "http://" + addr + "/compute/v1/"
	return s, nil
}

func (s *Server) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// ComputeEndpoint is the base URL for FLOTILLA_GCE_COMPUTE_ENDPOINT.
func (s *Server) ComputeEndpoint() string { return s.computeURL }

// AddInstance starts a metadata server for a new instance and returns it;
// its Host goes in that daemon's GCE_METADATA_HOST.
func (s *Server) AddInstance(name, ip string, attrs map[string]string) (*Instance, error) {
	s.mu.Lock()
	if _, dup := s.instances[name]; dup {
		s.mu.Unlock()
		return nil, fmt.Errorf("instance %s exists", name)
	}
	s.nextID++
	in := &Instance{Name: name, IP: ip, Zone: "us-central1-a", ID: s.nextID, Attrs: map[string]string{}}
	for k, v := range attrs {
		in.Attrs[k] = v
	}
	s.instances[name] = in
	s.mu.Unlock()
	host, err := s.serve(s.metadataHandler(in))
	if err != nil {
		return nil, err
	}
	in.Host = host
	return in, nil
}

// SetProjectAttr sets (or, with an empty value, deletes) a project
// attribute the way an operator's gcloud would: a new fingerprint, and
// waiters wake up.
func (s *Server) SetProjectAttr(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]string, len(s.items))
	for _, it := range s.items {
		next[it.Key] = it.Value
	}
	if value == "" {
		delete(next, key)
	} else {
		next[key] = value
	}
	var items []Item
	seen := false
	for _, it := range s.items {
		if v, ok := next[it.Key]; ok {
			items = append(items, Item{it.Key, v})
			seen = seen || it.Key == key
		}
	}
	if !seen && value != "" {
		items = append(items, Item{key, value})
	}
	s.replaceLocked("admin", items)
}

// ProjectAttrs returns a copy of the project attributes.
func (s *Server) ProjectAttrs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.items))
	for _, it := range s.items {
		out[it.Key] = it.Value
	}
	return out
}

// Fingerprint is the project metadata's current fingerprint.
func (s *Server) Fingerprint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fingerprint
}

// Writes returns the log of accepted writes, oldest first.
func (s *Server) Writes() []Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Write(nil), s.writes...)
}

// Conflicts counts the writes refused with 412 for a stale fingerprint.
func (s *Server) Conflicts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conflicts
}

// gather holds project reads until n have arrived.
type gather struct {
	n, arrived int
	all        chan struct{}
	timeout    time.Duration
}

// GatherReads makes the next n reads of the project through the Compute
// API wait for each other (at most timeout), so that n writers read the
// same fingerprint and race to write: the collision that instances booting
// together meet on real GCE, made certain.
func (s *Server) GatherReads(n int, timeout time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gather = &gather{n: n, all: make(chan struct{}), timeout: timeout}
}

// awaitGather blocks a read while a gathering is under way.
func (s *Server) awaitGather() {
	s.mu.Lock()
	g := s.gather
	if g == nil {
		s.mu.Unlock()
		return
	}
	g.arrived++
	if g.arrived == g.n {
		close(g.all)
		s.gather = nil
	}
	s.mu.Unlock()
	select {
	case <-g.all:
	case <-time.After(g.timeout):
	}
}

// Close stops every listener; waiting requests end.
func (s *Server) Close() {
	s.mu.Lock()
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	for _, srv := range servers {
		_ = srv.Close()
	}
}

// replaceLocked installs items as the project metadata and logs the write.
func (s *Server) replaceLocked(by string, items []Item) {
	old := map[string]string{}
	for _, it := range s.items {
		old[it.Key] = it.Value
	}
	w := Write{By: by, At: time.Now(), Changed: map[string]string{}}
	for _, it := range items {
		if v, ok := old[it.Key]; !ok || v != it.Value {
			w.Changed[it.Key] = it.Value
		}
		delete(old, it.Key)
	}
	for k := range old {
		w.Deleted = append(w.Deleted, k)
	}
	s.items = items
	s.fingerprint = newFingerprint()
	s.writes = append(s.writes, w)
	close(s.changed)
	s.changed = make(chan struct{})
}

func newFingerprint() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	// The real API's fingerprints are base64 of 8 bytes; any opaque string
	// serves.
	return hex.EncodeToString(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var errNotFound = errors.New("not found")
