package manager

import (
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// Upper bounds on the counts in a service spec. The orchestrator turns each
// into an int and into work proportional to it (a list of slots, a batch of
// updates, a history of attempts), so an unbounded count would let one
// request take every manager down in turn. Documented in docs/operations.md.
const (
	// MaxReplicas bounds Mode.Replicated.Replicas.
	MaxReplicas = 100_000
	// MaxReplicasPerNode bounds TaskTemplate.Placement.MaxReplicas.
	MaxReplicasPerNode = MaxReplicas
	// MaxUpdateParallelism bounds UpdateConfig/RollbackConfig.Parallelism.
	MaxUpdateParallelism = MaxReplicas
	// MaxRestartAttempts bounds TaskTemplate.RestartPolicy.MaxAttempts (the
	// task history kept for a slot grows with it).
	MaxRestartAttempts = 1_000
)

// validateSpecCounts refuses a count above its bound, naming the field.
func validateSpecCounts(spec *swarm.ServiceSpec) error {
	type bound struct {
		field string
		v     uint64
		max   uint64
	}
	var bs []bound
	if r := spec.Mode.Replicated; r != nil && r.Replicas != nil {
		bs = append(bs, bound{"Mode.Replicated.Replicas", *r.Replicas, MaxReplicas})
	}
	if p := spec.TaskTemplate.Placement; p != nil {
		bs = append(bs, bound{"TaskTemplate.Placement.MaxReplicas", p.MaxReplicas, MaxReplicasPerNode})
	}
	if rp := spec.TaskTemplate.RestartPolicy; rp != nil && rp.MaxAttempts != nil {
		bs = append(bs, bound{"TaskTemplate.RestartPolicy.MaxAttempts", *rp.MaxAttempts, MaxRestartAttempts})
	}
	if uc := spec.UpdateConfig; uc != nil {
		bs = append(bs, bound{"UpdateConfig.Parallelism", uc.Parallelism, MaxUpdateParallelism})
	}
	if uc := spec.RollbackConfig; uc != nil {
		bs = append(bs, bound{"RollbackConfig.Parallelism", uc.Parallelism, MaxUpdateParallelism})
	}
	for _, b := range bs {
		if b.v > b.max {
			return errdefs.Invalid("%s is %d, above the maximum of %d: use a smaller value", b.field, b.v, b.max)
		}
	}
	return nil
}
