package driver_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

func TestValidate(t *testing.T) {
	ok := []driver.Spec{
		{TaskID: "t", Image: "busybox"},
		{TaskID: "t", Command: []string{"/bin/true"}},
		{TaskID: "t", Image: "x", Env: []string{"A=", "B=c=d"}},
	}
	for _, s := range ok {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	bad := []driver.Spec{
		{Image: "busybox"},
		{TaskID: "t"},
		{TaskID: "t", Command: []string{""}},
		{TaskID: "t", Image: "x", Env: []string{"NOEQUALS"}},
		{TaskID: "t", Image: "x", Env: []string{"=v"}},
		{TaskID: "t", Image: "x", MemoryBytes: -1},
	}
	for _, s := range bad {
		if err := s.Validate(); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("%+v: %v, want Invalid", s, err)
		}
	}
}

func TestNamesAndTimeouts(t *testing.T) {
	if got := (driver.Spec{TaskID: "abc", ServiceName: "web", Slot: 3}).TaskName(); got != "web.3.abc" {
		t.Errorf("replicated task name %s", got)
	}
	if got := (driver.Spec{TaskID: "abc", ServiceName: "agent", NodeID: "n1"}).TaskName(); got != "agent.n1.abc" {
		t.Errorf("global task name %s", got)
	}
	if got := (driver.Spec{}).GracePeriod(); got != 10*time.Second {
		t.Errorf("default grace %v", got)
	}
	if driver.StopTimeout(0) != 10*time.Second || driver.StopTimeout(-1) != 0 || driver.StopTimeout(time.Second) != time.Second {
		t.Error("StopTimeout")
	}
}

func TestHandleJSON(t *testing.T) {
	h := driver.Handle{Driver: "process", ID: "t1", PID: 42, StartedAt: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
		Extra: map[string]string{"dir": "/x/t1"}}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back driver.Handle
	if err := json.Unmarshal(b, &back); err != nil || back.ID != h.ID || back.PID != 42 || !back.StartedAt.Equal(h.StartedAt) || back.Extra["dir"] != "/x/t1" {
		t.Fatalf("round trip %s -> %+v %v", b, back, err)
	}
	if b, _ := json.Marshal(driver.Handle{ID: "x"}); string(b) != `{"Driver":"","ID":"x","PID":0,"StartedAt":"0001-01-01T00:00:00Z"}` {
		t.Errorf("empty Extra is omitted: %s", b)
	}
}
