package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// durabilityLabel is the service label the clients write.
const durabilityLabel = "durability.value"

// opTimeout bounds one API call of a durability client; a call that takes
// longer has an unknown outcome.
const opTimeout = 10 * time.Second

// apiClient talks to one manager's Engine API socket without keep-alive,
// so a request never rides a connection to a process that has since died
// (each request dials; a refused dial means it was never sent).
func apiClient(n *node, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", n.sock)
			},
		},
	}
}

// apiReply is one HTTP exchange: a status and body, or the transport error.
type apiReply struct {
	status int
	body   []byte
	err    error
	// stale: the manager answered from its replica without a confirmed
	// leader (X-Flotilla-Stale-Read), so the answer may miss recent writes.
	stale bool
}

// notSent reports whether the request certainly never reached the daemon:
// the dial failed (the daemon is dead and its socket refuses).
func (r apiReply) notSent() bool {
	var op *net.OpError
	return r.err != nil && errors.As(r.err, &op) && op.Op == "dial" ||
		errors.Is(r.err, syscall.ECONNREFUSED) || errors.Is(r.err, syscall.ENOENT)
}

func (r apiReply) message() string {
	if r.err != nil {
		return r.err.Error()
	}
	var m struct{ Message string }
	if json.Unmarshal(r.body, &m) == nil && m.Message != "" {
		return m.Message
	}
	return strings.TrimSpace(string(r.body))
}

func doAPI(c *http.Client, method, path string, body any) apiReply {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return apiReply{err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://flotilla"+path, rd)
	if err != nil {
		return apiReply{err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		return apiReply{err: err}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return apiReply{status: res.StatusCode, body: b, err: err, stale: res.Header.Get("X-Flotilla-Stale-Read") != ""}
}

// writeOutcome classifies the answer to a write. Only answers that say the
// write was not applied are failures; everything else that is not a
// success (timeouts, resets, "may or may not have been applied", errors
// this test does not know) is unknown.
func writeOutcome(r apiReply, okStatus int, refusal outcome) outcome {
	switch {
	case r.err == nil && r.status == okStatus:
		return outOK
	case r.err != nil:
		return outUnknown
	case r.status == http.StatusNotFound:
		return outNotFound
	case r.status == http.StatusConflict:
		return refusal
	case r.status == http.StatusServiceUnavailable && refusedForNoLeader(r.message()):
		return outRefused
	}
	return outUnknown
}

// outRefused: the manager said the write was never proposed (no leader).
// Such writes did not happen and are not part of the history.
const outRefused outcome = "refused"

// refusedForNoLeader recognises the errors that mean the write was never
// proposed: no leader known, the request reached a former leader (or
// leadership moved while it was routed), or a leader still starting up.
func refusedForNoLeader(msg string) bool {
	return strings.Contains(msg, "does not have a leader") ||
		strings.Contains(msg, "leadership changed while the request was being forwarded") ||
		strings.Contains(msg, "still starting and cannot serve forwarded requests") ||
		strings.Contains(msg, "no longer the leader; the request was not applied")
}

// durabilityClient runs operations against the managers.
type durabilityClient struct {
	id      int
	nextID  *atomic.Int64 // porcupine client IDs: a new one after an unknown outcome
	seq     int
	rng     *rand.Rand
	keys    []string
	targets []*node
	clients map[*node]*http.Client
	h       *history
	// errs collects anomalies that are bugs on their own (e.g. a stale
	// version accepted, an unclear error).
	anomaly func(format string, args ...any)
}

func newDurabilityClient(id int, nextID *atomic.Int64, keys []string, targets []*node, h *history, anomaly func(string, ...any)) *durabilityClient {
	c := &durabilityClient{id: int(nextID.Add(1) - 1), nextID: nextID, rng: rand.New(rand.NewPCG(uint64(id), 42)),
		keys: keys, targets: targets, clients: map[*node]*http.Client{}, h: h, anomaly: anomaly}
	for _, n := range targets {
		c.clients[n] = apiClient(n, opTimeout)
	}
	return c
}

func serviceSpecFor(key, value string) swarm.ServiceSpec {
	zero := uint64(0)
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: key, Labels: map[string]string{durabilityLabel: value}},
		// No replicas: the test is about the manager's state, not tasks.
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox:latest"}},
	}
}

// step runs one random operation.
func (c *durabilityClient) step() {
	key := c.keys[c.rng.IntN(len(c.keys))]
	via := c.targets[c.rng.IntN(len(c.targets))]
	switch p := c.rng.IntN(100); {
	case p < 30:
		c.read(via, key)
	case p < 70:
		// docker service update: inspect for the version, then update.
		if st, ok := c.read(via, key); ok && st.exists {
			c.update(via, key, st.version)
		} else if ok {
			c.create(via, key)
		}
	case p < 88:
		c.create(via, key)
	default:
		c.remove(via, key)
	}
}

func (c *durabilityClient) newValue() string {
	c.seq++
	return fmt.Sprintf("c%d-%d", c.id, c.seq)
}

// record adds an operation; after an unknown outcome the client continues
// under a new ID, since its previous operation never returned.
func (c *durabilityClient) record(in svcInput, call int64, out svcOutput) {
	c.h.add(c.id, in, call, out)
	if out.outcome == outUnknown {
		c.id = int(c.nextID.Add(1) - 1)
	}
}

// read inspects a service (GET /services/{name}); ok is false when the
// manager gave no answer, which is not recorded.
func (c *durabilityClient) read(via *node, key string) (svcOutput, bool) {
	in := svcInput{kind: opRead, key: key, via: via.name}
	call := c.h.now()
	r := doAPI(c.clients[via], http.MethodGet, "/services/"+url.PathEscape(key), nil)
	if r.stale && r.err == nil {
		// A documented exception (reads answer without quorum): not part
		// of the linearizable history, and never used for an update.
		c.h.staleRead()
		return svcOutput{}, false
	}
	switch {
	case r.err == nil && r.status == http.StatusOK:
		var s swarm.Service
		if err := json.Unmarshal(r.body, &s); err != nil {
			c.anomaly("read %s via %s: undecodable service: %v", key, via, err)
			return svcOutput{}, false
		}
		if s.Version.Index == 0 {
			c.anomaly("read %s via %s: the service has no version (Version.Index 0)", key, via)
		}
		out := svcOutput{outcome: outOK, exists: true, value: s.Spec.Labels[durabilityLabel], version: s.Version.Index}
		c.record(in, call, out)
		return out, true
	case r.err == nil && r.status == http.StatusNotFound:
		out := svcOutput{outcome: outOK}
		c.record(in, call, out)
		return out, true
	case r.err == nil && r.status == http.StatusBadRequest && strings.Contains(r.message(), "ambiguous"):
		c.anomaly("read %s via %s: two services carry the name: %s", key, via, r.message())
	}
	c.h.readFailed()
	return svcOutput{}, false
}

func (c *durabilityClient) create(via *node, key string) { c.createVia(via, key) }

// createVia creates a service and returns the answer and its outcome.
func (c *durabilityClient) createVia(via *node, key string) (apiReply, outcome) {
	in := svcInput{kind: opCreate, key: key, value: c.newValue(), via: via.name}
	call := c.h.now()
	r := doAPI(c.clients[via], http.MethodPost, "/services/create", serviceSpecFor(key, in.value))
	return r, c.finish(in, call, r, http.StatusCreated, outExists)
}

func (c *durabilityClient) update(via *node, key string, version uint64) {
	in := svcInput{kind: opUpdate, key: key, value: c.newValue(), version: version, via: via.name}
	call := c.h.now()
	r := doAPI(c.clients[via], http.MethodPost, fmt.Sprintf("/services/%s/update?version=%d", url.PathEscape(key), version), serviceSpecFor(key, in.value))
	if r.err == nil && r.status == http.StatusConflict && !strings.Contains(r.message(), "update out of sequence") {
		c.anomaly("update %s with a stale version via %s: 409 without docker's \"update out of sequence\": %s", key, via, r.message())
	}
	c.finish(in, call, r, http.StatusOK, outStale)
}

func (c *durabilityClient) remove(via *node, key string) {
	in := svcInput{kind: opRemove, key: key, via: via.name}
	call := c.h.now()
	r := doAPI(c.clients[via], http.MethodDelete, "/services/"+url.PathEscape(key), nil)
	c.finish(in, call, r, http.StatusOK, outUnknown) // remove has no conflict
}

// finish classifies and records a write. Writes that were refused before
// being proposed (the daemon was down, or had no leader) are counted but
// not recorded: they did not happen, and say nothing about the state.
func (c *durabilityClient) finish(in svcInput, call int64, r apiReply, okStatus int, refusal outcome) outcome {
	if r.notSent() {
		c.h.refused(false)
		return outRefused
	}
	o := writeOutcome(r, okStatus, refusal)
	if o == outRefused {
		c.h.refused(true)
		return o
	}
	if o == outUnknown && r.err == nil && !containsAny(r.message(), "may or may not") {
		c.anomaly("%s %s via %s: unexpected answer %d %s", in.kind, in.key, in.via, r.status, r.message())
	}
	c.record(in, call, svcOutput{outcome: o})
	return o
}
