package gcetest

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string, flavor bool) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if flavor {
		req.Header.Set("Metadata-Flavor", "Google")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestMetadataServerRules(t *testing.T) {
	s, err := New("proj")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, err := s.AddInstance("vm-1", "10.0.0.5", map[string]string{"flotilla-role": "worker"})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + in.Host + "/computeMetadata/v1/"

	if res, _ := get(t, base+"instance/name", false); res.StatusCode != http.StatusForbidden {
		t.Fatalf("without Metadata-Flavor: %s, want 403", res.Status)
	}
	res, body := get(t, base+"instance/network-interfaces/0/ip", true)
	if res.StatusCode != 200 || body != "10.0.0.5" || res.Header.Get("ETag") == "" || res.Header.Get("Metadata-Flavor") != "Google" {
		t.Fatalf("ip: %s %q etag %q", res.Status, body, res.Header.Get("ETag"))
	}
	if res, _ := get(t, base+"project/attributes/missing", true); res.StatusCode != 404 {
		t.Fatalf("missing attribute: %s, want 404", res.Status)
	}

	// wait_for_change with the current ETag blocks until a write...
	res, _ = get(t, base+"project/attributes/?recursive=true", true)
	etag := res.Header.Get("ETag")
	got := make(chan string, 1)
	go func() {
		_, body := get(t, base+"project/attributes/?recursive=true&wait_for_change=true&last_etag="+etag, true)
		got <- body
	}()
	select {
	case b := <-got:
		t.Fatalf("wait_for_change returned %q before any change", b)
	case <-time.After(300 * time.Millisecond): // it must still be waiting
	}
	s.SetProjectAttr("k", "v")
	select {
	case b := <-got:
		if b != `{"k":"v"}` {
			t.Fatalf("after the change: %q", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait_for_change did not return after a change")
	}
	// ...or until timeout_sec, with the same ETag.
	res, _ = get(t, base+"project/attributes/?recursive=true", true)
	etag = res.Header.Get("ETag")
	start := time.Now()
	res, _ = get(t, base+"project/attributes/?recursive=true&timeout_sec=1&wait_for_change=true&last_etag="+etag, true)
	if res.Header.Get("ETag") != etag || time.Since(start) < 900*time.Millisecond {
		t.Fatalf("timeout: etag %q (want %q) after %s", res.Header.Get("ETag"), etag, time.Since(start))
	}
	// A stale ETag answers at once.
	if res, body := get(t, base+"project/attributes/k?wait_for_change=true&last_etag=stale", true); body != "v" || res.StatusCode != 200 {
		t.Fatalf("stale etag: %s %q", res.Status, body)
	}
}

func TestComputeNeedsToken(t *testing.T) {
	s, err := New("proj")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := http.Post(s.ComputeEndpoint()+"projects/proj/setCommonInstanceMetadata", "application/json",
		strings.NewReader(`{"fingerprint":"`+s.Fingerprint()+`","items":[{"key":"a","value":"b"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %s, want 401", res.Status)
	}
	if len(s.ProjectAttrs()) != 0 || len(s.Writes()) != 0 {
		t.Fatalf("an unauthenticated call changed the metadata: %v", s.ProjectAttrs())
	}
}
