package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// servedSessions reads each manager's flotilla_dispatcher_served_sessions:
// the nodes whose session it serves (its own agent among them).
func servedSessions(managers []*node) (map[*node]float64, error) {
	out := map[*node]float64{}
	for _, m := range managers {
		s, err := m.metrics()
		if err != nil {
			return nil, err
		}
		v, ok := s.sum("flotilla_dispatcher_served_sessions")
		if !ok {
			return nil, fmt.Errorf("%s: no flotilla_dispatcher_served_sessions", m)
		}
		out[m] = v
	}
	return out, nil
}

// Workers spread over the managers, whichever one they talk to serves
// their session (a follower relays to the leader), and a follower that
// stops answering loses its workers to the other managers without any of
// them being marked Down.
func TestWorkersMoveOffAFrozenFollower(t *testing.T) {
	c := newCluster(t, 3, 4)
	leader := c.mustLeader(c.managers[0])
	followers := c.otherManagers(leader)

	var served map[*node]float64
	eventually(t, convergeTimeout, func() (err error) {
		if served, err = servedSessions(c.managers); err != nil {
			return err
		}
		total := 0.0
		for _, v := range served {
			total += v
		}
		if want := float64(len(c.managers) + len(c.workers)); total != want {
			return fmt.Errorf("managers serve %v sessions in all, want %v (every node once)", total, want)
		}
		return nil
	})
	victim, via := followers[0], followers[1]
	if served[via] > served[victim] {
		victim, via = via, victim
	}
	t.Logf("sessions served: leader %s %v, %s %v, %s %v", leader, served[leader], victim, served[victim], via, served[via])
	if served[victim] < 2 {
		// Each node picks its manager from its ID: all four on the
		// leader happens once in 81 clusters.
		t.Skipf("no worker chose a follower (sessions %v): nothing would move", served)
	}
	moving := served[victim] - 1 // its own agent stays with it

	if err := victim.signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = victim.signal(syscall.SIGCONT) }()
	// Through three detection periods and more, every worker stays Ready.
	consistently(t, 8*time.Second, rowsMatch(leader, func(m map[string]nodeRow) error {
		for _, w := range c.workers {
			if m[w.name].Status != "Ready" {
				return fmt.Errorf("worker %s is %s while a follower is frozen", w, m[w.name].Status)
			}
		}
		return nil
	}))
	eventually(t, downTimeout, func() error {
		now, err := servedSessions([]*node{leader, via})
		if err != nil {
			return err
		}
		if got, want := now[leader]+now[via], served[leader]+served[via]+moving; got != want {
			return fmt.Errorf("the other managers serve %v sessions, want %v (the frozen follower's %v workers moved)", got, want, moving)
		}
		return nil
	})
	eventually(t, downTimeout, rowsMatch(leader, func(m map[string]nodeRow) error {
		if m[victim.name].Status != "Down" {
			return fmt.Errorf("frozen %s is %s, want Down", victim, m[victim.name].Status)
		}
		return nil
	}))

	if err := victim.signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	c.waitReady(leader, convergeTimeout)
}
