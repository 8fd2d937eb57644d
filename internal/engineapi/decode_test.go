package engineapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

const (
	msgEmpty     = "invalid JSON: the request body is empty, a JSON object is required"
	msgNotObject = "invalid JSON: the request body must be a JSON object"
	msgTrailing  = "invalid JSON: unexpected content after the JSON object"
	msgTruncated = "invalid JSON: unexpected end of the request body"
)

func TestDecodeBody(t *testing.T) {
	big := `{"Name":"` + strings.Repeat("x", MaxBodySize) + `"}`
	justFits := `{"Name":"` + strings.Repeat("x", MaxBodySize-11) + `"}`
	for _, tc := range []struct {
		name, body, contentType string
		msg                     string // "" for success
	}{
		{name: "object", body: `{"Name":"default"}`},
		{name: "surrounding space", body: " \n\t{\"Name\":\"default\"}\r\n "},
		{name: "unknown fields", body: `{"Name":"default","NewerField":{"a":[1,2]},"Other":null}`},
		{name: "empty object", body: `{}`},
		{name: "content type with charset", body: `{}`, contentType: "application/json; charset=utf-8"},
		{name: "no content type", body: `{}`, contentType: "-"},
		{name: "limit", body: justFits},
		{name: "empty", body: "", msg: msgEmpty},
		{name: "blank", body: "  \n ", msg: msgEmpty},
		{name: "null", body: "null", msg: msgNotObject},
		{name: "array", body: `[{"Name":"default"}]`, msg: msgNotObject},
		{name: "string", body: `"default"`, msg: msgNotObject},
		{name: "number", body: `7`, msg: msgNotObject},
		{name: "garbage", body: `Name=default`, msg: msgNotObject},
		{name: "truncated", body: `{"Name":"def`, msg: msgTruncated},
		{name: "unclosed", body: `{`, msg: msgTruncated},
		{name: "syntax", body: `{"Name" "default"}`, msg: "invalid JSON: invalid character '\"' after object key"},
		{name: "trailing object", body: `{} {}`, msg: msgTrailing},
		{name: "trailing garbage", body: `{"Name":"default"}x`, msg: msgTrailing},
		{name: "trailing brace", body: `{}}`, msg: msgTrailing},
		{name: "wrong type", body: `{"Name":7}`, msg: "invalid JSON: field Annotations.Name: cannot use a JSON number as string"},
		{name: "wrong nested type", body: `{"Raft":{"ElectionTick":"ten"}}`, msg: "invalid JSON: field Raft.ElectionTick: cannot use a JSON string as int"},
		{name: "too large", body: big, msg: "request body too large: the limit is 1048576 bytes"},
		{name: "wrong content type", body: `{}`, contentType: "text/plain", msg: "unsupported Content-Type header (text/plain): must be 'application/json'"},
		{name: "form content type", body: `{}`, contentType: "application/x-www-form-urlencoded", msg: "unsupported Content-Type header (application/x-www-form-urlencoded): must be 'application/json'"},
		{name: "malformed content type", body: `{}`, contentType: "application/json; =", msg: "malformed Content-Type header (application/json; =): mime: invalid media parameter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/swarm/update", strings.NewReader(tc.body))
			switch tc.contentType {
			case "":
				req.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				req.Header.Set("Content-Type", tc.contentType)
			}
			var spec swarm.Spec
			err := decodeBody(req, &spec)
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.msg)
			}
			if !errdefs.Is(err, errdefs.KindInvalid) {
				t.Errorf("error %v is not Invalid", err)
			}
			if err.Error() != tc.msg {
				t.Errorf("error = %q, want %q", err.Error(), tc.msg)
			}
		})
	}
}

func TestDecodeBodyNilAndFailingBody(t *testing.T) {
	req := httptest.NewRequest("POST", "/swarm/join", nil)
	req.Body = nil
	if err := decodeBody(req, &swarm.JoinRequest{}); err == nil || err.Error() != msgEmpty {
		t.Errorf("nil body: %v", err)
	}
	req = httptest.NewRequest("POST", "/swarm/join", iotest.ErrReader(errors.New("connection reset")))
	if err := decodeBody(req, &swarm.JoinRequest{}); !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("failing body: %v", err)
	}
}

// Every route that takes a body refuses a bad one with 400 before calling
// the backend.
func TestMalformedBodiesOnRoutes(t *testing.T) {
	routes := []string{"/swarm/init", "/swarm/join", "/swarm/update?version=7", "/nodes/node-b/update?version=11"}
	for _, body := range []struct{ body, msg string }{
		{"", msgEmpty}, {"null", msgNotObject}, {"[]", msgNotObject}, {"{", msgTruncated}, {"{}{}", msgTrailing},
	} {
		for _, target := range routes {
			f := newFakeCluster()
			f.info.LocalNodeState = swarm.LocalNodeStateInactive // so that init and join would succeed
			rec := serve(t, NewHandler(f), "POST", "/v1.47"+target, body.body)
			wantStatus(t, rec, 400)
			if got := errorMessage(t, rec); got != body.msg {
				t.Errorf("%s %q: message = %q, want %q", target, body.body, got, body.msg)
			}
			if c := f.recorded(); len(c.inits)+len(c.joins)+len(c.swarmUpdates)+len(c.nodeUpdates) != 0 {
				t.Errorf("%s %q: backend called: %+v", target, body.body, c)
			}
		}
	}
	// A body too large for the limit, sent over a real connection.
	srv := httptest.NewServer(NewHandler(newFakeCluster()))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/swarm/join", "application/json", io.MultiReader(strings.NewReader(`{"JoinToken":"`), strings.NewReader(strings.Repeat("x", 2*MaxBodySize)), strings.NewReader(`"}`)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Message string }
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != 400 || !strings.HasPrefix(e.Message, "request body too large") {
		t.Errorf("large body: status %d, message %q, err %v", resp.StatusCode, e.Message, err)
	}
}

func FuzzDecodeBody(f *testing.F) {
	for _, seed := range []string{
		``, ` `, `{}`, `null`, `[]`, `"s"`, `{"Name":"default"}`, `{"Name":7}`, `{} {}`, `{}x`, `{`, `}`,
		`{"Orchestration":{"TaskHistoryRetentionLimit":-1}}`, `{"CAConfig":{"ExternalCAs":[null,{}]}}`,
		`{"Raft":{"KeepOldSnapshots":18446744073709551616}}`, "\xff\xfe{}", `{"a":` + strings.Repeat("[", 20000),
		`{"DefaultAddrPool":["10.0.0.0/8","nope"]}`, `{"Labels":{"a":"\ud800"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{&swarm.Spec{}, &swarm.InitRequest{}, &swarm.NodeSpec{}, &map[string]any{}} {
			req := httptest.NewRequest("POST", "/swarm/update", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			err := decodeBody(req, v)
			if err != nil {
				if !errdefs.Is(err, errdefs.KindInvalid) {
					t.Fatalf("error %v is not Invalid", err)
				}
				continue
			}
			// Accepted: the body was one JSON object and nothing else.
			trimmed := bytes.TrimSpace(body)
			if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
				t.Fatalf("accepted a body that is not a single JSON object: %q", body)
			}
		}
	})
}
