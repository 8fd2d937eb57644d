package nodeapi

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// An error written by one node reads back on the other with its class and
// message, so a follower can pass the leader's answer on unchanged.
func TestErrorRoundTrip(t *testing.T) {
	for _, err := range []error{
		errdefs.NotFound("service web not found"),
		errdefs.Conflict("update out of sequence"),
		errdefs.ErrNotManager,
		errors.New("disk on fire"),
	} {
		rec := httptest.NewRecorder()
		WriteError(rec, err)
		got := DecodeResponse(rec.Result(), nil)
		if got == nil || got.Error() != err.Error() || errdefs.KindOf(got) != errdefs.KindOf(err) {
			t.Errorf("%v (kind %v) came back as %v (kind %v)", err, errdefs.KindOf(err), got, errdefs.KindOf(got))
		}
	}
}
