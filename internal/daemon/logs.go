package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/engineapi"
	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/manager/state"
	"github.com/flotilla-org/flotilla/security/ca"
)

// Logs merges the logs of the selected tasks from every node that runs
// them. A node that cannot be reached is reported in the stream and the
// others are still shown (moby/moby#37336).
func (b *backend) Logs(ctx context.Context, sel engineapi.LogSelector, opts engineapi.LogOptions, out engineapi.LogSink) error {
	m, err := b.mgr()
	if err != nil {
		return err
	}
	byNode := map[string][]string{}
	for _, t := range m.Store().TasksByService(sel.ServiceID) {
		if (sel.TaskID == "" || t.ID == sel.TaskID) && t.NodeID != "" {
			byNode[t.NodeID] = append(byNode[t.NodeID], t.ID)
		}
	}
	n := b.d.current()
	req := nodeapi.LogsRequest{Follow: opts.Follow, Tail: opts.Tail, Since: opts.Since, Timestamps: opts.Timestamps}
	nodeIDs := make([]string, 0, len(byNode))
	for id := range byNode {
		nodeIDs = append(nodeIDs, id)
	}
	sort.Strings(nodeIDs)
	var wg sync.WaitGroup
	for _, nodeID := range nodeIDs {
		node := m.Store().Node(nodeID)
		r := req
		r.TaskIDs = byNode[nodeID]
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := fetchLogs(ctx, n.cli, node, r, func(l nodeapi.LogLine) error {
				return out.Write(engineapi.LogMessage{Stream: l.Stream, Time: l.Time, Line: l.Line,
					NodeID: nodeID, ServiceID: sel.ServiceID, TaskID: l.TaskID})
			})
			if err != nil && ctx.Err() == nil {
				name := nodeID
				if node != nil {
					name = node.Description.Hostname
				}
				_ = out.Write(engineapi.LogMessage{Stream: 2, NodeID: nodeID, ServiceID: sel.ServiceID, TaskID: r.TaskIDs[0],
					Line: []byte(fmt.Sprintf("flotilla: the logs of %d task(s) on node %s are missing: %v", len(r.TaskIDs), name, err))})
			}
		}()
	}
	wg.Wait()
	return nil
}

func fetchLogs(ctx context.Context, cli *nodeapi.Client, node *state.Node, req nodeapi.LogsRequest, emit func(nodeapi.LogLine) error) error {
	if node == nil {
		return errdefs.NotFound("the node is no longer in the swarm")
	}
	if node.Status.State == swarm.NodeStateDown {
		return errdefs.Unavailable("node is down")
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+node.Addr+nodeapi.PathLogs, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := cli.Do(hreq)
	if err != nil {
		return errdefs.Unavailable("cannot reach it: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nodeapi.DecodeResponse(resp, nil)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var l nodeapi.LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("bad log stream: %v", err)
		}
		if l.TaskID == "" && len(l.Line) > 0 {
			return fmt.Errorf("%s", l.Line) // an error the node sent mid-stream
		}
		if err := emit(l); err != nil {
			return err
		}
	}
	return sc.Err()
}

// serveLogs streams this node's logs of the asked tasks as JSON lines, to
// a manager only.
func (n *clusterNode) serveLogs(w http.ResponseWriter, r *http.Request) {
	id, err := n.peerOf(r)
	if err != nil {
		nodeapi.WriteError(w, err)
		return
	}
	if id.Role != ca.RoleManager {
		nodeapi.WriteError(w, errdefs.Forbidden("only managers may read task logs from a node"))
		return
	}
	var req nodeapi.LogsRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		nodeapi.WriteError(w, errdefs.Invalid("malformed logs request: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flush := func() {}
	if f, ok := w.(http.Flusher); ok {
		flush = f.Flush
		flush()
	}
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	send := func(l nodeapi.LogLine) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(l)
		flush()
	}
	var wg sync.WaitGroup
	for _, taskID := range req.TaskIDs {
		drv, h, ok := n.exec.Handle(taskID)
		if !ok {
			continue // never started here (rejected, or still starting)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := make(chan driver.LogMessage, 64)
			done := make(chan error, 1)
			go func() {
				done <- drv.Logs(r.Context(), h, driver.LogOptions{Follow: req.Follow, Since: req.Since, Tail: req.Tail, Timestamps: req.Timestamps}, ch)
				close(ch)
			}()
			for m := range ch {
				send(nodeapi.LogLine{TaskID: taskID, Stream: m.Stream, Time: m.Time, Line: m.Line})
			}
			if err := <-done; err != nil && r.Context().Err() == nil {
				n.log.Debug("task logs", "task", taskID, "err", err)
			}
		}()
	}
	wg.Wait()
}
