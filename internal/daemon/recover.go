package daemon

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager/raftnode"
)

// forceNewCluster turns a surviving manager of a swarm that lost its
// quorum into a one-manager swarm with all of its state: nodes, services,
// tasks, tokens and CA stay; the lost managers show as unreachable and can
// be demoted and removed; new managers join or are promoted as usual.
// Running tasks are not touched: the node's tasks keep running and the
// workers reconnect by themselves (they know this manager's address).
func (b *backend) forceNewCluster(ctx context.Context, req swarm.InitRequest) (string, error) {
	d := b.d
	n := d.current()
	if n == nil {
		return "", errdefs.Invalid("--force-new-cluster recovers a manager of an existing swarm, and this node is in no swarm; run 'swarm init' without it to create a new swarm")
	}
	st := n.state()
	if st.Role != swarm.NodeRoleManager || n.manager() == nil {
		return "", errdefs.Invalid("this node is a worker: run --force-new-cluster on a surviving manager")
	}
	// The CLIs always send a listen address (0.0.0.0:2377 by default);
	// only an address the user chose moves the manager.
	listenGiven := req.ListenAddr != "" && req.ListenAddr != "0.0.0.0:"+DefaultClusterPort
	if listenGiven || req.AdvertiseAddr != "" {
		listen := st.ListenAddr
		if listenGiven {
			listen = req.ListenAddr
		}
		adv := req.AdvertiseAddr
		if adv == "" && !listenGiven {
			adv = st.AdvertiseAddr
		}
		listen, advertise, err := resolveAddrs(listen, adv)
		if err != nil {
			return "", err
		}
		st.ListenAddr, st.AdvertiseAddr = listen, advertise
	}
	certs := n.tls.certs()
	n.keys.mu.Lock()
	dek, kek := n.keys.dek, n.keys.kek
	n.keys.mu.Unlock()
	d.setNode(nil, "")
	n.stop()
	restart := func() (*clusterNode, error) { return startClusterNode(d, &st, certs, false, dek, kek) }
	if err := raftnode.ForceNewCluster(d.paths.raftDir(), dek, st.NodeID, st.AdvertiseAddr); err != nil {
		// Put the node back as it was: nothing was changed.
		if old, rerr := restart(); rerr == nil {
			d.setNode(old, "")
		}
		return "", errdefs.Invalid("force-new-cluster: %v", err)
	}
	st.Managers = []swarm.Peer{{NodeID: st.NodeID, Addr: st.AdvertiseAddr}}
	if err := d.paths.saveState(&st); err != nil {
		return "", err
	}
	nn, err := restart()
	if err != nil {
		return "", err
	}
	d.setNode(nn, "")
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := nn.manager().WaitLeader(wctx); err != nil {
		return "", err
	}
	d.log.Info("forced a new cluster from this manager's state", "node", st.NodeID, "addr", st.AdvertiseAddr)
	return st.NodeID, nil
}
