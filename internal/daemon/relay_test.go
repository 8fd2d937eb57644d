package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// followerHost is a follower whose leader is at leaderAddr ("" for none
// known).
type followerHost struct {
	mu         sync.Mutex
	leaderAddr string
	electing   int // Leader answers none this many times first
}

func (f *followerHost) IsLeader() bool { return false }
func (f *followerHost) Leader() (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.electing > 0 {
		f.electing--
		return "", ""
	}
	if f.leaderAddr == "" {
		return "", ""
	}
	return "leader-id", f.leaderAddr
}
func (f *followerHost) NodeDescription(nodeID string) *swarm.NodeDescription {
	return &swarm.NodeDescription{Hostname: "host-" + nodeID}
}
func (f *followerHost) Relayed(context.Context, nodeapi.RelayRequest) (nodeapi.RelayResponse, error) {
	return nodeapi.RelayResponse{}, errors.New("a follower must not take relays itself")
}

// fakeLeader answers relays: the first one waits for release, so that
// what arrives meanwhile must gather into the next.
type fakeLeader struct {
	mu      sync.Mutex
	calls   []nodeapi.RelayRequest
	release chan struct{}
	refuse  map[string]error
	failFor int  // answer Unavailable to this many calls first
	bare    bool // says it takes beats without a description
}

func (l *fakeLeader) call(ctx context.Context, addr, path string, in, out any) error {
	if addr != "10.0.0.1:2377" || path != nodeapi.PathRelay {
		return fmt.Errorf("relay sent to %s%s", addr, path)
	}
	req := in.(nodeapi.RelayRequest)
	l.mu.Lock()
	first := len(l.calls) == 0
	l.calls = append(l.calls, req)
	fail := l.failFor > 0
	l.failFor--
	l.mu.Unlock()
	if first && l.release != nil {
		<-l.release
	}
	if fail {
		return errdefs.Unavailable("this manager is no longer the leader")
	}
	resp := out.(*nodeapi.RelayResponse)
	resp.BareBeats = l.bare
	for _, b := range req.Beats {
		if err := l.refuse[b.Node]; err != nil {
			if resp.Refused == nil {
				resp.Refused = map[string]nodeapi.Refusal{}
			}
			resp.Refused[b.Node] = nodeapi.RefusalOf(err)
		}
	}
	return nil
}

func (l *fakeLeader) callCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

// answeredOnlyOnRelease checks that a request held by the leader is not
// answered before release, and is answered without error after it.
func answeredOnlyOnRelease(t *testing.T, answer <-chan error, release chan struct{}, what string) {
	t.Helper()
	select {
	case err := <-answer:
		t.Fatalf("%s was answered (%v) before the leader took it", what, err)
	default:
	}
	close(release)
	if err := <-answer; err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

func newTestRelayer(t *testing.T, host *followerHost, l *fakeLeader) *relayer {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &relayer{base: ctx, manager: func() relayHost { return host }, call: l.call, wait: 500 * time.Millisecond}
}

// What nodes send while a relay is under way goes to the leader together
// in the next one, and each node hears back only once its part was taken.
func TestRelayGathersWhileOneIsUnderWay(t *testing.T) {
	l := &fakeLeader{release: make(chan struct{})}
	r := newTestRelayer(t, &followerHost{leaderAddr: "10.0.0.1:2377"}, l)
	ctx := context.Background()

	firstDone := make(chan error, 1)
	go func() { firstDone <- r.beat(ctx, "node-0", nodeapi.HeartbeatRequest{Addr: "10.0.0.9:2377"}) }()
	waitFor(t, func() bool { return l.callCount() == 1 })

	const n = 50
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- r.beat(ctx, fmt.Sprintf("node-%d", i+1), nodeapi.HeartbeatRequest{}) }()
	}
	waitFor(t, func() bool {
		r.beats.mu.Lock()
		defer r.beats.mu.Unlock()
		return len(r.beats.queue) == 1 && len(r.beats.queue[0].req.Beats) == n
	})
	answeredOnlyOnRelease(t, firstDone, l.release, "the first beat")
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("relayed beat: %v", err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.calls) != 2 {
		t.Fatalf("the leader got %d relays, want 2 (one under way, then the %d gathered meanwhile)", len(l.calls), n)
	}
	if len(l.calls[1].Beats) != n {
		t.Errorf("second relay carries %d beats, want %d", len(l.calls[1].Beats), n)
	}
	if l.calls[0].Beats[0].Beat.Addr != "10.0.0.9:2377" {
		t.Errorf("the beat's address did not reach the leader: %+v", l.calls[0].Beats)
	}
}

// Status reports the leader holds (its replica behind the assignments
// they report on) do not hold up beats: those go in relays of their own.
func TestRelayBeatsDoNotWaitForReports(t *testing.T) {
	l := &fakeLeader{release: make(chan struct{})}
	r := newTestRelayer(t, &followerHost{leaderAddr: "10.0.0.1:2377"}, l)
	ctx := context.Background()
	reported := make(chan error, 1)
	go func() {
		reported <- r.statuses(ctx, "n1", nodeapi.TaskStatusRequest{Updates: []nodeapi.TaskStatusUpdate{{TaskID: "t"}}, Index: 42})
	}()
	waitFor(t, func() bool { return l.callCount() == 1 })
	if err := r.beat(ctx, "n2", nodeapi.HeartbeatRequest{}); err != nil {
		t.Fatalf("beat while a report is held: %v", err)
	}
	answeredOnlyOnRelease(t, reported, l.release, "the report")
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.calls[0]; len(st.Statuses) != 1 || len(st.Beats) != 0 || st.Index != 42 {
		t.Errorf("the report's relay is %+v, want the one report alone with its index 42", st)
	}
}

// A node the leader refuses hears its own refusal; the others in the same
// relay succeed.
func TestRelayRefusalGoesToItsNode(t *testing.T) {
	l := &fakeLeader{refuse: map[string]error{"gone": nodeapi.ErrNodeRemoved}}
	r := newTestRelayer(t, &followerHost{leaderAddr: "10.0.0.1:2377"}, l)
	ctx := context.Background()
	if err := r.beat(ctx, "gone", nodeapi.HeartbeatRequest{}); !errors.Is(err, nodeapi.ErrNodeRemoved) {
		t.Errorf("removed node's beat: %v, want the leader's removal answer", err)
	}
	if err := r.beat(ctx, "kept", nodeapi.HeartbeatRequest{}); err != nil {
		t.Errorf("other node's beat: %v", err)
	}
}

// A beat that left its description out as unchanged reaches a leader of
// an earlier version with the description this replica holds (that
// leader would read a missing one as a node without hostname or
// resources), and goes bare only to a leader that said it takes that.
func TestRelayFillsDescriptionForEarlierLeader(t *testing.T) {
	ctx := context.Background()
	own := &swarm.NodeDescription{Hostname: "renamed"}
	for _, bare := range []bool{false, true} {
		l := &fakeLeader{bare: bare}
		r := newTestRelayer(t, &followerHost{leaderAddr: "10.0.0.1:2377"}, l)
		for range 2 {
			if err := r.beat(ctx, "n", nodeapi.HeartbeatRequest{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.beat(ctx, "m", nodeapi.HeartbeatRequest{Description: own}); err != nil {
			t.Fatal(err)
		}
		if len(l.calls) != 3 {
			t.Fatalf("leader got %d relays, want 3", len(l.calls))
		}
		first, second := l.calls[0].Beats[0].Beat.Description, l.calls[1].Beats[0].Beat.Description
		if first == nil || first.Hostname != "host-n" {
			t.Errorf("leader saying bare=%v: first relay's beat carries %+v, want this replica's description", bare, first)
		}
		if bare && second != nil {
			t.Errorf("a leader that takes bare beats got a description filled in: %+v", second)
		}
		if !bare && (second == nil || second.Hostname != "host-n") {
			t.Errorf("an earlier leader got a beat without a description: %+v", second)
		}
		if got := l.calls[2].Beats[0].Beat.Description; got == nil || got.Hostname != "renamed" {
			t.Errorf("a beat's own description was replaced: %+v", got)
		}
	}
}

// A relay waits out an election: the leader that answers "not the leader"
// is asked again, and so is the one elected after a spell with none.
func TestRelayWaitsOutAnElection(t *testing.T) {
	host := &followerHost{leaderAddr: "10.0.0.1:2377", electing: 3}
	l := &fakeLeader{failFor: 2}
	r := newTestRelayer(t, host, l)
	r.wait = 5 * time.Second
	if err := r.beat(context.Background(), "n", nodeapi.HeartbeatRequest{}); err != nil {
		t.Fatalf("beat during an election: %v", err)
	}
	if len(l.calls) != 3 {
		t.Errorf("leader asked %d times, want 3 (two refusals, then taken)", len(l.calls))
	}
}

// With no leader for longer than a relay may wait, the node is told, so
// it moves to another manager rather than believe it was heard.
func TestRelayWithoutLeaderFails(t *testing.T) {
	r := newTestRelayer(t, &followerHost{}, &fakeLeader{})
	r.wait = 200 * time.Millisecond
	err := r.statuses(context.Background(), "n", nodeapi.TaskStatusRequest{})
	if !errdefs.Is(err, errdefs.KindUnavailable) {
		t.Fatalf("relay without a leader: %v, want Unavailable", err)
	}
}

// A node that gives up waiting is answered at once; the relay goes on.
func TestRelayCallerGivesUp(t *testing.T) {
	l := &fakeLeader{release: make(chan struct{})}
	defer close(l.release)
	r := newTestRelayer(t, &followerHost{leaderAddr: "10.0.0.1:2377"}, l)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.beat(ctx, "n", nodeapi.HeartbeatRequest{}); !errdefs.Is(err, errdefs.KindUnavailable) {
		t.Fatalf("beat whose caller gave up: %v, want Unavailable", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
