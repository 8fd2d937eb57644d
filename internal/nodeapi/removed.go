package nodeapi

import (
	"errors"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// ErrNodeRemoved is the managers' answer to a node removed from the swarm.
// It travels with its own code, so the node can tell it from any other
// Forbidden (which must not make it stop its tasks): check it with
// errors.Is.
var ErrNodeRemoved = errdefs.Forbidden("this node was removed from the swarm; run 'flotilla swarm leave' on it and join again with a current token")

// CodeNodeRemoved is Error.Code for ErrNodeRemoved.
const CodeNodeRemoved = "node-removed"

// removedError is ErrNodeRemoved as decoded from an answer: the sender's
// message, matching ErrNodeRemoved.
type removedError struct{ msg string }

func (e removedError) Error() string        { return e.msg }
func (e removedError) Is(target error) bool { return target == ErrNodeRemoved }

// codeOf is the Error.Code that goes with err.
func codeOf(err error) string {
	if errors.Is(err, ErrNodeRemoved) {
		return CodeNodeRemoved
	}
	return ""
}
