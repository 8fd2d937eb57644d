package engineapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// MaxBodySize is the largest request body accepted (a follower that
// forwards a request to the leader applies it too).
const MaxBodySize = 1 << 20

// decodeBody decodes the JSON object in the body of r into v. It answers a
// 400 error for a Content-Type other than application/json, an empty body,
// a body that is not a JSON object, malformed JSON, values of the wrong type,
// data after the object and a body over MaxBodySize. Unknown fields are
// ignored: newer clients send fields this server does not know.
func decodeBody(r *http.Request, v any) error {
	return decodeBodyLimit(r, v, MaxBodySize)
}

// decodeBodyLimit is decodeBody for a body of up to limit bytes.
func decodeBodyLimit(r *http.Request, v any, limit int) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return errdefs.Invalid("malformed Content-Type header (%s): %v", ct, err)
		}
		if mt != "application/json" {
			return errdefs.Invalid("unsupported Content-Type header (%s): must be 'application/json'", ct)
		}
	}
	if r.Body == nil {
		return errEmptyBody
	}
	defer r.Body.Close()
	return decodeJSONObjectLimit(r.Body, v, limit)
}

var errEmptyBody = errdefs.Invalid("invalid JSON: the request body is empty, a JSON object is required")

// decodeJSONObjectLimit decodes the single JSON object read from body
// (at most limit bytes) into v.
func decodeJSONObjectLimit(body io.Reader, v any, limit int) error {
	data, err := io.ReadAll(io.LimitReader(body, int64(limit)+1))
	if err != nil {
		return errdefs.Invalid("reading request body: %v", err)
	}
	if len(data) > limit {
		return errdefs.Invalid("request body too large: the limit is %d bytes", limit)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return errEmptyBody
	}
	if trimmed[0] != '{' {
		return errdefs.Invalid("invalid JSON: the request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return errdefs.Invalid("invalid JSON: %s", describeJSONError(err))
	}
	if rest := bytes.TrimSpace(data[dec.InputOffset():]); len(rest) > 0 {
		return errdefs.Invalid("invalid JSON: unexpected content after the JSON object")
	}
	return nil
}

func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of the request body"
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Sprintf("field %s: cannot use a JSON %s as %s", typeErr.Field, typeErr.Value, typeErr.Type)
	default:
		return err.Error()
	}
}
