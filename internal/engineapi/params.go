package engineapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// boolValue reads a lenient boolean query parameter, as dockerd does: any
// value but "", "0", "no", "false" and "none" is true.
func boolValue(r *http.Request, key string) bool {
	switch strings.ToLower(strings.TrimSpace(r.URL.Query().Get(key))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// strictBool reads an optional boolean query parameter that must parse
// with strconv.ParseBool.
func strictBool(r *http.Request, key string) (bool, error) {
	s := r.URL.Query().Get(key)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, errdefs.Invalid("invalid value for %s: %s", key, s)
	}
	return b, nil
}

// objectVersion reads the required "version" query parameter of an update;
// what names the object ("swarm", "node") for the error message.
func objectVersion(r *http.Request, what string) (uint64, error) {
	s := r.URL.Query().Get("version")
	if s == "" {
		return 0, errdefs.Invalid("invalid %s version '': the version query parameter is required", what)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errdefs.Invalid("invalid %s version '%s': %v", what, s, err)
	}
	return v, nil
}
