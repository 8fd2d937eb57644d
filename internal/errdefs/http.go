package errdefs

import (
	"errors"
	"net/http"
)

// httpStatuses is the one mapping between error classes and the HTTP
// statuses Docker answers them with. The Engine API and the node-to-node
// API both write it, and a node reading another node's answer reads it
// back, so a class survives the trip between managers.
var httpStatuses = []struct {
	kind   Kind
	status int
}{
	{KindInvalid, http.StatusBadRequest},
	{KindUnauthorized, http.StatusUnauthorized},
	{KindForbidden, http.StatusForbidden},
	{KindNotFound, http.StatusNotFound},
	{KindConflict, http.StatusConflict},
	{KindUnavailable, http.StatusServiceUnavailable},
}

// HTTPStatus is the status to answer err with: 500 for an unclassified
// error, as dockerd.
func HTTPStatus(err error) int {
	k := KindOf(err)
	for _, m := range httpStatuses {
		if m.kind == k {
			return m.status
		}
	}
	return http.StatusInternalServerError
}

// FromHTTPStatus rebuilds the error an HTTP answer carries: msg, of the
// class its status stands for (KindUnknown for a status no class has).
func FromHTTPStatus(status int, msg string) error {
	k := KindUnknown
	for _, m := range httpStatuses {
		if m.status == status {
			k = m.kind
		}
	}
	return WithKind(k, errors.New(msg))
}
