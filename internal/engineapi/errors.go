package engineapi

import (
	"encoding/json"
	"net/http"

	"github.com/moby/moby/api/types/common"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

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
	writeErrorStatus(w, errdefs.HTTPStatus(err), err.Error())
}

func writeErrorStatus(w http.ResponseWriter, status int, msg string) {
	_ = writeJSON(w, status, common.ErrorResponse{Message: msg})
}
