package engineapi

import (
	"encoding/json"
	"net/http"

	"github.com/moby/moby/api/types/common"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// statusFromError maps an error class to the HTTP status Docker uses.
func statusFromError(err error) int {
	switch errdefs.KindOf(err) {
	case errdefs.KindInvalid:
		return http.StatusBadRequest
	case errdefs.KindUnauthorized:
		return http.StatusUnauthorized
	case errdefs.KindForbidden:
		return http.StatusForbidden
	case errdefs.KindNotFound:
		return http.StatusNotFound
	case errdefs.KindConflict:
		return http.StatusConflict
	case errdefs.KindUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// writeJSON writes v as the JSON body of a response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeError writes err as {"message": "..."} with the status of its class.
func writeError(w http.ResponseWriter, err error) {
	writeErrorStatus(w, statusFromError(err), err.Error())
}

func writeErrorStatus(w http.ResponseWriter, status int, msg string) {
	_ = writeJSON(w, status, common.ErrorResponse{Message: msg})
}
