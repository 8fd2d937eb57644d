package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent"
	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/clusterport"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/security/ca"
)

// simNode is a worker without a daemon: it joins through the real join
// RPC, then runs the real agent session and executor over mutual TLS, with
// a shared fake driver. A thousand of them fit in one process.
type simNode struct {
	name    string
	id      string
	session *agent.Session
	client  *nodeapi.Client
}

func joinSimNode(ctx context.Context, name, token string, root *ca.RootCA, managers []string, first int, drv driver.Driver, clock *taskClock, log *slog.Logger) (*simNode, error) {
	keyPEM, csrPEM, err := ca.NewKeyAndCSR("joining")
	if err != nil {
		return nil, err
	}
	anon, err := ca.ClientTLSConfig(nil, nil, root, clusterport.ProtoRPC)
	if err != nil {
		return nil, err
	}
	jc := nodeapi.NewClient(func() *tls.Config { return anon }, func() uint64 { return 0 })
	defer jc.Close()
	desc := swarm.NodeDescription{
		Hostname:  name,
		Platform:  swarm.Platform{OS: "linux", Architecture: "x86_64"},
		Resources: swarm.Resources{NanoCPUs: 4e9, MemoryBytes: 8 << 30},
		Engine:    swarm.EngineDescription{EngineVersion: "sim", Plugins: []swarm.PluginDescription{{Type: "Driver", Name: "fake"}}},
	}
	var resp nodeapi.JoinResponse
	req := nodeapi.JoinRequest{Token: token, CSR: csrPEM, Hostname: name, Addr: "127.0.0.1:1", Description: desc}
	// A connection refused in a storm of thousands of joins (the
	// manager's accept queue full) joined nothing: try again, as an
	// operator would. Any later failure may have joined the node.
	for try := 1; ; try++ {
		err := jc.Call(ctx, managers[first%len(managers)], nodeapi.PathJoin, req, &resp)
		var op *net.OpError
		if err != nil && try < 5 && errors.As(err, &op) && op.Op == "dial" && ctx.Err() == nil {
			sleepCtx(ctx, time.Duration(try)*100*time.Millisecond) // let the storm's queue drain
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("join %s: %w", name, err)
		}
		break
	}
	cfg, err := ca.ClientTLSConfig(resp.CertPEM, keyPEM, root, clusterport.ProtoRPC)
	if err != nil {
		return nil, err
	}
	cfg.NextProtos = clusterport.RPCClientProtos() // as a node: HTTP/2 where the manager has it
	cli := nodeapi.NewClient(func() *tls.Config { return cfg }, func() uint64 { return 1 })
	exec := &agent.Executor{NodeID: resp.NodeID, Drivers: map[string]driver.Driver{"fake": drv}, Default: "fake", Log: log}
	if err := exec.Start(ctx); err != nil {
		return nil, err
	}
	s := &agent.Session{NodeID: resp.NodeID, Addr: "127.0.0.1:1", Describe: func() swarm.NodeDescription { return desc },
		Client: clockedCaller{next: cli, clock: clock}, Log: log, Executor: exec}
	// Spread sessions over the managers, as workers are in a real cluster.
	order := make([]string, 0, len(managers))
	for i := range managers {
		order = append(order, managers[(first+i)%len(managers)])
	}
	s.SetManagers(order)
	return &simNode{name: name, id: resp.NodeID, session: s, client: cli}, nil
}
