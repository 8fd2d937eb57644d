package engineapi

import (
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

// GET /tasks/{id} takes what dockerd takes: a full task ID, the task's
// name (<service>.<slot or node ID>.<task ID>, its container's name), or a
// unique ID prefix.
func TestTaskResolution(t *testing.T) {
	const (
		web    = "svcweb0000000000000000001"
		agent  = "svcagent00000000000000001"
		task1  = "tsk1aaaa00000000000000001"
		task2  = "tsk1bbbb00000000000000002"
		taskG  = "tsk2cccc00000000000000003"
		orphan = "tsk3dddd00000000000000004"
	)
	f := newFakeCluster()
	f.services = []swarm.Service{svc(web, "web"), svc(agent, "agent")}
	f.tasks = []swarm.Task{
		{ID: task1, ServiceID: web, Slot: 1},
		{ID: task2, ServiceID: web, Slot: 2},
		{ID: taskG, ServiceID: agent, NodeID: idB},
		{ID: orphan, ServiceID: "svcgone", Slot: 1}, // its service was removed
	}
	for _, tc := range []refCase{
		{ref: task2, wantID: task2},
		{ref: "tsk2", wantID: taskG},
		{ref: "web.1." + task1, wantID: task1},
		{ref: "agent." + idB + "." + taskG, wantID: taskG},
		{ref: "tsk1", code: 400, msg: "task tsk1 is ambiguous (2 matches found)"},
		{ref: "web.1", code: 404, msg: "task web.1 not found"}, // the name is whole or nothing
		{ref: "web.2." + task1, code: 404, msg: "task web.2." + task1 + " not found"},
		{ref: "nosuch", code: 404, msg: "task nosuch not found"},
		{ref: "tsk3", wantID: orphan},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			rec := serve(t, NewHandler(f), "GET", "/v1.47/tasks/"+tc.ref, "")
			wantResolved(t, rec, tc.code, tc.msg, tc.wantID)
		})
	}
}
