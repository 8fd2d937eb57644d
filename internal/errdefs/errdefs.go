// Package errdefs classifies errors by what the caller should do about them.
// HTTPStatus and FromHTTPStatus map each class to and from the HTTP status
// Docker uses, so every other package can say "not found" or "conflict"
// without knowing about HTTP.
package errdefs

import (
	"errors"
	"fmt"
)

// Kind is the class of an error.
type Kind int

const (
	KindUnknown      Kind = iota
	KindInvalid           // 400: the request is malformed or a parameter is bad
	KindForbidden         // 403: the caller may not do this
	KindNotFound          // 404: the object does not exist
	KindConflict          // 409: stale version, name in use
	KindUnavailable       // 503: not in a swarm, not a manager, no leader, quorum lost
	KindUnauthorized      // 401: bad or missing credentials (token, certificate)
)

type classified struct {
	kind Kind
	err  error
}

func (c *classified) Error() string { return c.err.Error() }
func (c *classified) Unwrap() error { return c.err }

func wrap(k Kind, format string, args ...any) error {
	return &classified{kind: k, err: fmt.Errorf(format, args...)}
}

func Invalid(format string, args ...any) error      { return wrap(KindInvalid, format, args...) }
func Forbidden(format string, args ...any) error    { return wrap(KindForbidden, format, args...) }
func NotFound(format string, args ...any) error     { return wrap(KindNotFound, format, args...) }
func Conflict(format string, args ...any) error     { return wrap(KindConflict, format, args...) }
func Unavailable(format string, args ...any) error  { return wrap(KindUnavailable, format, args...) }
func Unauthorized(format string, args ...any) error { return wrap(KindUnauthorized, format, args...) }

// WithKind classifies an existing error, keeping it for errors.Is/As.
func WithKind(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &classified{kind: k, err: err}
}

// KindOf returns the class of err (KindUnknown when unclassified).
func KindOf(err error) Kind {
	var c *classified
	if errors.As(err, &c) {
		return c.kind
	}
	return KindUnknown
}

// Is reports whether err is of class k.
func Is(err error, k Kind) bool { return KindOf(err) == k }

// Messages Docker prints for the common swarm states; the docker CLI and
// scripts match on some of them, so they are kept word for word.
const (
	MsgNotInSwarm     = "This node is not part of a swarm"
	MsgNotManager     = "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager."
	MsgAlreadyInSwarm = "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one."
)

var (
	ErrNotInSwarm     = Unavailable(MsgNotInSwarm)
	ErrNotManager     = Unavailable(MsgNotManager)
	ErrAlreadyInSwarm = Unavailable(MsgAlreadyInSwarm)
)
