package engineapi

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

// A list streams as one JSON array: [] when nothing matches (clients
// range over it; null would do for Go, not for every client), the kept
// items in order, with HTML characters left as they are.
func TestWriteJSONList(t *testing.T) {
	type item struct{ Name string }
	items := []item{{"a<b>"}, {"skip"}, {"c&d"}}
	for _, tc := range []struct {
		name string
		keep func(*item) bool
		want string
	}{
		{"none kept", func(*item) bool { return false }, "[]\n"},
		{"some kept", func(i *item) bool { return i.Name != "skip" }, `[{"Name":"a<b>"},{"Name":"c&d"}]` + "\n"},
		{"all", nil, `[{"Name":"a<b>"},{"Name":"skip"},{"Name":"c&d"}]` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if err := writeJSONList(rec, items, tc.keep); err != nil {
				t.Fatal(err)
			}
			if got := rec.Body.String(); got != tc.want {
				t.Errorf("body %q, want %q", got, tc.want)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var back []item
			if err := json.Unmarshal(rec.Body.Bytes(), &back); err != nil {
				t.Errorf("not JSON: %v", err)
			}
		})
	}
}
