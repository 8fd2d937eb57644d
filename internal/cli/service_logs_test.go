package cli_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

const (
	logTask1  = "task1aaaaaaaaaaaaaaaaaaaa"
	logTask10 = "task10bbbbbbbbbbbbbbbbbbb"
)

func logDetails(nodeID, taskID string) string {
	return "com.docker.swarm.node.id=" + nodeID + ",com.docker.swarm.service.id=" + svcWebID + ",com.docker.swarm.task.id=" + taskID
}

// logsAPI serves the logs of web (10 replicas), a multiplexed stream the
// way the daemon sends it with details: two tasks on two nodes, a line
// split over two frames, a stderr line, and the daemon's warning about a
// node it could not reach.
func logsAPI(t *testing.T, timestamps bool) *fakeAPI {
	web := testService(svcWebID, "web", "app:1", 10)
	f := newFakeAPI(t)
	f.reply("GET /services/web", http.StatusOK, web)
	f.reply("GET /services/"+svcWebID, http.StatusOK, web)
	f.reply("GET /nodes", http.StatusOK, progressNodes())
	f.reply("GET /tasks/"+logTask1, http.StatusOK, testTask(logTask1, web, 1, nodeA, swarm.TaskStateRunning, swarm.TaskStateRunning, 0))
	f.reply("GET /tasks/"+logTask10, http.StatusOK, testTask(logTask10, web, 10, nodeB, swarm.TaskStateRunning, swarm.TaskStateRunning, 0))
	ts := func(s string) string {
		if timestamps {
			return "2025-01-02T03:04:05.000000006Z " + s
		}
		return s
	}
	var stream bytes.Buffer
	stream.Write(muxFrame(1, ts(logDetails(nodeA, logTask1)+" hello from one\n")))
	stream.Write(muxFrame(2, ts(logDetails(nodeB, logTask10)+" oops on ten\n")))
	stream.Write(muxFrame(3, "node node-c is unreachable: the logs of its tasks are missing\n"))
	stream.Write(muxFrame(1, ts(logDetails(nodeB, logTask10)+" a line in ")))
	stream.Write(muxFrame(1, "two frames\n"))
	stream.Write(muxFrame(1, ts(logDetails(nodeA, logTask1)+",env=prod second line\n")))
	body := stream.Bytes()
	handler := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}
	f.handle("GET /services/web/logs", handler)
	f.handle("GET /tasks/"+logTask1+"/logs", handler)
	f.fail("GET /services/"+logTask1, http.StatusNotFound, "service "+logTask1+" not found")
	return f
}

func TestServiceLogs(t *testing.T) {
	f := logsAPI(t, false)
	r := mustRun(t, f.host, "service", "logs", "web")
	want := "" +
		"web.1.task1aaaaaaa@node-a     | hello from one\n" +
		"web.10.task10bbbbbb@node-b    | a line in two frames\n" +
		"web.1.task1aaaaaaa@node-a     | second line\n"
	if r.stdout != want {
		t.Errorf("logs printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	wantErr := "web.10.task10bbbbbb@node-b    | oops on ten\n" +
		"node node-c is unreachable: the logs of its tasks are missing\n"
	if r.stderr != wantErr {
		t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, wantErr)
	}
	q := f.only("GET", "/services/web/logs")[0].Query
	if q.Get("stdout") != "1" || q.Get("stderr") != "1" || q.Get("details") != "1" || q.Has("follow") || q.Has("timestamps") || q.Has("tail") {
		t.Errorf("logs query = %v", q)
	}
}

func TestServiceLogsOptions(t *testing.T) {
	f := logsAPI(t, true)
	r := mustRun(t, f.host, "service", "logs", "-f", "--tail", "5", "-t", "--no-task-ids", "--details", "web")
	want := "" +
		"2025-01-02T03:04:05.000000006Z web.1@node-a     | hello from one\n" +
		"2025-01-02T03:04:05.000000006Z web.10@node-b    | a line in two frames\n" +
		"2025-01-02T03:04:05.000000006Z web.1@node-a     | env=prod second line\n"
	if r.stdout != want {
		t.Errorf("logs printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	q := f.only("GET", "/services/web/logs")[0].Query
	if q.Get("follow") != "1" || q.Get("tail") != "5" || q.Get("timestamps") != "1" || q.Get("details") != "1" {
		t.Errorf("logs query = %v", q)
	}

	f = logsAPI(t, false)
	r = mustRun(t, f.host, "service", "logs", "--no-trunc", "--no-resolve", "web")
	if first := strings.SplitAfter(r.stdout, "\n")[0]; first != svcWebID+".1."+logTask1+"@"+nodeA+"     | hello from one\n" {
		t.Errorf("logs --no-trunc --no-resolve printed %q", first)
	}

	f = logsAPI(t, false)
	r = mustRun(t, f.host, "service", "logs", "--raw", "web")
	if first := strings.SplitAfter(r.stdout, "\n")[0]; first != logDetails(nodeA, logTask1)+" hello from one\n" {
		t.Errorf("logs --raw printed %q", first)
	}
	if q := f.only("GET", "/services/web/logs")[0].Query; q.Has("details") {
		t.Errorf("--raw without --details asked for details: %v", q)
	}

	if r := run(t, f.host, "service", "logs", "--tail", "-3", "web"); r.err == nil || !strings.Contains(r.stderr, `invalid --tail "-3"`) {
		t.Errorf("bad --tail: err=%v stderr=%q", r.err, r.stderr)
	}
}

func TestServiceLogsOfATask(t *testing.T) {
	f := logsAPI(t, false)
	r := mustRun(t, f.host, "service", "logs", logTask1)
	if !strings.HasPrefix(r.stdout, "web.1.task1aaaaaaa@node-a    | hello from one\n") {
		t.Errorf("task logs printed:\n%s", r.stdout)
	}
	if len(f.only("GET", "/tasks/"+logTask1+"/logs")) != 1 {
		t.Errorf("requests: %v", f.routesCalled())
	}

	f.fail("GET /services/nope", http.StatusNotFound, "service nope not found")
	f.fail("GET /tasks/nope", http.StatusNotFound, "task nope not found")
	if r := run(t, f.host, "service", "logs", "nope"); r.err == nil || r.stderr != "no such task or service: nope\n" {
		t.Errorf("err=%v stderr=%q", r.err, r.stderr)
	}
}
