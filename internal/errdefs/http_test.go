package errdefs

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestHTTPStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{Invalid("bad"), http.StatusBadRequest},
		{Unauthorized("who"), http.StatusUnauthorized},
		{Forbidden("no"), http.StatusForbidden},
		{NotFound("gone"), http.StatusNotFound},
		{Conflict("stale"), http.StatusConflict},
		{Unavailable("later"), http.StatusServiceUnavailable},
		{ErrNotManager, http.StatusServiceUnavailable},
		{fmt.Errorf("wrapped: %w", NotFound("gone")), http.StatusNotFound},
		{errors.New("plain"), http.StatusInternalServerError},
		{WithKind(KindUnknown, errors.New("unknown")), http.StatusInternalServerError},
	} {
		if got := HTTPStatus(tc.err); got != tc.want {
			t.Errorf("HTTPStatus(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestFromHTTPStatus(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   Kind
	}{
		{http.StatusBadRequest, KindInvalid},
		{http.StatusUnauthorized, KindUnauthorized},
		{http.StatusForbidden, KindForbidden},
		{http.StatusNotFound, KindNotFound},
		{http.StatusConflict, KindConflict},
		{http.StatusServiceUnavailable, KindUnavailable},
		{http.StatusInternalServerError, KindUnknown},
		{http.StatusBadGateway, KindUnknown},
		{http.StatusMethodNotAllowed, KindUnknown},
	} {
		err := FromHTTPStatus(tc.status, "the message")
		if got := KindOf(err); got != tc.want {
			t.Errorf("FromHTTPStatus(%d) has kind %v, want %v", tc.status, got, tc.want)
		}
		if err.Error() != "the message" {
			t.Errorf("FromHTTPStatus(%d) = %q, want the message alone", tc.status, err.Error())
		}
	}
}

// Every class survives the trip through its status and back: a follower
// passes on the leader's answers with the class the leader gave them.
func TestHTTPStatusRoundTrip(t *testing.T) {
	for _, k := range []Kind{KindUnknown, KindInvalid, KindForbidden, KindNotFound, KindConflict, KindUnavailable, KindUnauthorized} {
		status := HTTPStatus(WithKind(k, errors.New("x")))
		if got := KindOf(FromHTTPStatus(status, "x")); got != k {
			t.Errorf("kind %v → status %d → kind %v", k, status, got)
		}
	}
}
