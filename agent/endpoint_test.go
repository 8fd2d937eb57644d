package agent

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/driver/fake"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// endpointDriver is the fake driver with addresses, counting the lookups.
type endpointDriver struct {
	*fake.Driver
	asked   atomic.Int32
	started chan driver.Spec
}

func (d *endpointDriver) Start(ctx context.Context, spec driver.Spec) (driver.Handle, error) {
	d.started <- spec
	return d.Driver.Start(ctx, spec)
}

func (d *endpointDriver) Endpoint(_ context.Context, h driver.Handle, p driver.Port) (string, error) {
	d.asked.Add(1)
	return fmt.Sprintf("127.0.0.1:%d", 40000+p.Target), nil
}

// The mesh asks where a task listens on every connection: only running
// tasks answer, the driver is asked once, and the task gets its ports
// (host mode ones bound at the node's publish address).
func TestEndpointOfRunningTaskAskedOnce(t *testing.T) {
	drv := &endpointDriver{Driver: fake.New(), started: make(chan driver.Spec, 1)}
	h, err := startExec(t, drv.Driver, "", func(e *Executor) {
		e.Drivers = map[string]driver.Driver{fake.Name: drv}
		e.PublishHost = "127.0.0.9"
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.e.Endpoint(context.Background(), "t1", driver.Port{Target: 80, Proto: "tcp"}); err == nil {
		t.Errorf("a task this node does not run has an endpoint")
	}
	task := mkTask("t1", 1, swarm.TaskStateRunning)
	ports := []swarm.PortConfig{
		{Protocol: "tcp", TargetPort: 80, PublishedPort: 8080, PublishMode: swarm.PortConfigPublishModeIngress},
		{Protocol: "udp", TargetPort: 53, PublishedPort: 5353, PublishMode: swarm.PortConfigPublishModeHost},
	}
	h.e.Sync([]nodeapi.Assignment{{Task: task, ServiceName: "web", Ports: ports}})
	spec := <-drv.started
	want := []driver.Port{{Target: 80, Proto: "tcp"}, {Target: 53, Proto: "udp", Host: true, HostIP: "127.0.0.9", Published: 5353}}
	if fmt.Sprint(spec.Ports) != fmt.Sprint(want) {
		t.Errorf("the task started with ports %+v, want %+v", spec.Ports, want)
	}
	st := h.waitState("t1", swarm.TaskStateRunning)
	if len(st.PortStatus.Ports) != 1 || st.PortStatus.Ports[0].PublishedPort != 5353 {
		t.Errorf("running task reports PortStatus %+v, want its host-mode port 5353", st.PortStatus)
	}
	for range 3 {
		a, err := h.e.Endpoint(context.Background(), "t1", driver.Port{Target: 80, Proto: "tcp"})
		if err != nil || a != "127.0.0.1:40080" {
			t.Fatalf("endpoint of t1: %q, %v", a, err)
		}
	}
	if n := drv.asked.Load(); n != 1 {
		t.Errorf("the driver was asked %d times for one task's address, want once", n)
	}
}
