package engineapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// serve sends one request to h and returns the recorded response. A
// non-empty body is sent as application/json.
func serve(t *testing.T, h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// errorMessage checks that rec holds a JSON error and returns its message.
func errorMessage(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type = %q, want application/json (body %q)", ct, rec.Body.String())
	}
	var e struct {
		Message *string `json:"message"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Message == nil {
		t.Fatalf("error body %q is not {\"message\": ...}: %v", rec.Body.String(), err)
	}
	return *e.Message
}

// decodeJSON decodes the body of rec into v, failing the test on error.
func decodeJSON(t *testing.T, rec *httptest.ResponseRecorder, v any) {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("decoding %q: %v", rec.Body.String(), err)
	}
}

// wantStatus fails the test if rec does not have status code.
func wantStatus(t *testing.T, rec *httptest.ResponseRecorder, code int) {
	t.Helper()
	if rec.Code != code {
		t.Fatalf("status = %d, want %d; body %q", rec.Code, code, rec.Body.String())
	}
}

// refCase is a reference to one object and the answer to a GET of it: the
// object's ID, or an error status and message.
type refCase struct {
	ref    string
	wantID string
	code   int
	msg    string
}

// wantResolved checks the answer to a GET of one object by reference: the
// error status and message when code is set, else 200 and the object with
// the ID wantID.
func wantResolved(t *testing.T, rec *httptest.ResponseRecorder, code int, msg, wantID string) {
	t.Helper()
	if code != 0 {
		wantStatus(t, rec, code)
		if got := errorMessage(t, rec); got != msg {
			t.Errorf("message = %q, want %q", got, msg)
		}
		return
	}
	wantStatus(t, rec, 200)
	var obj struct{ ID string }
	decodeJSON(t, rec, &obj)
	if obj.ID != wantID {
		t.Errorf("resolved to %s, want %s", obj.ID, wantID)
	}
}
