package nodeapi

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// The removal answer stays recognisable across the wire (also wrapped, or
// relayed by a follower); another Forbidden does not pass for it.
func TestRemovedAnswerCrossesTheWire(t *testing.T) {
	roundTrip := func(sent error) error {
		rec := httptest.NewRecorder()
		WriteError(rec, sent)
		return DecodeResponse(rec.Result(), nil)
	}
	for _, sent := range []error{ErrNodeRemoved, fmt.Errorf("heartbeat: %w", ErrNodeRemoved)} {
		got := roundTrip(sent)
		if !errors.Is(got, ErrNodeRemoved) || !errdefs.Is(got, errdefs.KindForbidden) || got.Error() != sent.Error() {
			t.Errorf("sent %q, got %q (kind %v): want the removal error, Forbidden, same message", sent, got, errdefs.KindOf(got))
		}
		// A follower relays the leader's body as it is: decode twice.
		if again := roundTrip(got); !errors.Is(again, ErrNodeRemoved) {
			t.Errorf("relayed once more, %q is no longer the removal error", again)
		}
	}
	other := roundTrip(errdefs.Forbidden("certificate refused: issued for another role"))
	if errors.Is(other, ErrNodeRemoved) || !errdefs.Is(other, errdefs.KindForbidden) {
		t.Errorf("another Forbidden came back as %q (removal %v, kind %v)", other, errors.Is(other, ErrNodeRemoved), errdefs.KindOf(other))
	}
}
