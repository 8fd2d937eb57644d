package nodeapi

import (
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// taskSet is a node's answer with n tasks of a small service.
func taskSet(n int) AssignmentsResponse {
	at := time.Date(2026, 12, 5, 4, 0, 0, 123456789, time.UTC)
	r := AssignmentsResponse{Index: 123, Fingerprint: "abcdef0123456789"}
	for i := range n {
		var tk swarm.Task
		tk.ID = fmt.Sprintf("task%022d", i)
		tk.Version.Index = 1234
		tk.CreatedAt, tk.UpdatedAt = at, at
		tk.ServiceID = "svc0123456789abcdefghijklm"
		tk.Slot = i + 1
		tk.NodeID = "node0123456789abcdefghijkl"
		tk.DesiredState = swarm.TaskStateRunning
		tk.Status = swarm.TaskStatus{Timestamp: at, State: swarm.TaskStateAssigned, Message: "scheduler assigned task to node"}
		tk.Spec.ContainerSpec = &swarm.ContainerSpec{Image: "web:1", Command: []string{"web", "--port=80"},
			Labels: map[string]string{"team": "shop"}, Env: []string{"A=1"}}
		tk.Spec.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny}
		r.Tasks = append(r.Tasks, Assignment{Task: tk, ServiceName: "web",
			Ports: []swarm.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishedPort: 8080}},
			Files: []TaskFile{{Kind: FileSecret, ID: "s1", Data: []byte("top\x00secret")}}})
	}
	return r
}

// An answer written by WriteJSON, with its length, reads back whole
// through DecodeResponse.
func TestAnswerRoundTrip(t *testing.T) {
	want := taskSet(3)
	rec := httptest.NewRecorder()
	WriteJSON(rec, want)
	res := rec.Result()
	if res.ContentLength <= 0 || res.Header.Get("Content-Length") == "" {
		t.Fatalf("answer without its length: %v", res.Header)
	}
	var got AssignmentsResponse
	if err := DecodeResponse(res, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("answer changed on its way:\n got %+v\nwant %+v", got, want)
	}
}

// A body shorter than its stated length, or not JSON, is an error, not a
// zero answer.
func TestAnswerTruncated(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteJSON(rec, taskSet(2))
	full := rec.Body.String()
	res := rec.Result()
	res.Body = readCloser{strings.NewReader(full[:len(full)/2])}
	var got AssignmentsResponse
	if err := DecodeResponse(res, &got); err == nil {
		t.Fatalf("half an answer decoded without an error: %+v", got)
	}
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

// BenchmarkAssignmentsCodec encodes and decodes a node's answer of 10
// tasks, as a manager and its node do for every assignment.
func BenchmarkAssignmentsCodec(b *testing.B) {
	r := taskSet(10)
	data, err := Marshal(r)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			if _, err := Marshal(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var out AssignmentsResponse
			if err := Unmarshal(data, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
