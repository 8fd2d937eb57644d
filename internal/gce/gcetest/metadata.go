package gcetest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxWait bounds a wait_for_change without timeout_sec, so that a test's
// server never holds a request forever.
const maxWait = 60 * time.Second

// metadataHandler serves computeMetadata/v1 for one instance.
func (s *Server) metadataHandler(in *Instance) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Metadata-Flavor", "Google")
		w.Header().Set("Server", "Metadata Server for VM")
		// The real server refuses requests that lack the header (so that a
		// page fetched by a browser cannot read it) and proxied ones.
		if r.Header.Get("Metadata-Flavor") != "Google" || r.Header.Get("X-Forwarded-For") != "" {
			http.Error(w, "Missing required header: Metadata-Flavor: Google", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		path, ok := strings.CutPrefix(r.URL.Path, "/computeMetadata/v1/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		recursive := q.Get("recursive") == "true"
		timeout := maxWait
		if t, err := strconv.Atoi(q.Get("timeout_sec")); err == nil && t > 0 {
			timeout = min(time.Duration(t)*time.Second, maxWait)
		}
		deadline := time.After(timeout)
		wait := q.Get("wait_for_change") == "true"
		lastETag := q.Get("last_etag")
		for {
			s.mu.Lock()
			body, ctype, err := s.valueLocked(in, path, recursive)
			changed := s.changed
			s.mu.Unlock()
			etag := etagOf(body)
			// Without last_etag, wait_for_change waits for the next change.
			if lastETag == "" && wait {
				lastETag = etag
			}
			if err != nil && !wait {
				http.NotFound(w, r)
				return
			}
			if !wait || etag != lastETag {
				if err != nil {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("ETag", etag)
				w.Header().Set("Content-Type", ctype)
				_, _ = w.Write([]byte(body))
				return
			}
			select {
			case <-changed:
			case <-deadline:
				wait = false // answer with the current value, same ETag
			case <-r.Context().Done():
				return
			}
		}
	})
}

func etagOf(body string) string {
	sum := sha256.Sum256([]byte(body))
	return hex.EncodeToString(sum[:8])
}

// valueLocked renders one metadata path for in.
func (s *Server) valueLocked(in *Instance, path string, recursive bool) (body, ctype string, err error) {
	const text, js = "application/text", "application/json"
	switch path {
	case "project/project-id":
		return s.Project, text, nil
	case "project/numeric-project-id":
		return s.Numeric, text, nil
	case "project/attributes/":
		m := map[string]string{}
		for _, it := range s.items {
			m[it.Key] = it.Value
		}
		return dir(m, recursive)
	case "instance/name":
		return in.Name, text, nil
	case "instance/hostname":
		return in.Name + ".c." + s.Project + ".internal", text, nil
	case "instance/id":
		return strconv.FormatUint(in.ID, 10), text, nil
	case "instance/zone":
		return "projects/" + s.Numeric + "/zones/" + in.Zone, text, nil
	case "instance/attributes/":
		return dir(in.Attrs, recursive)
	case "instance/network-interfaces/0/ip":
		return in.IP, text, nil
	case "instance/service-accounts/default/email":
		return s.Numeric + "-compute@developer.gserviceaccount.com", text, nil
	case "instance/service-accounts/default/token":
		tok := "ya29.emulated-" + in.Name + "-" + randomHex(8)
		s.tokens[tok] = in.Name
		b, _ := json.Marshal(map[string]any{"access_token": tok, "expires_in": 3599, "token_type": "Bearer"})
		return string(b), js, nil
	}
	if k, ok := strings.CutPrefix(path, "project/attributes/"); ok {
		for _, it := range s.items {
			if it.Key == k {
				return it.Value, text, nil
			}
		}
		return "", "", errNotFound
	}
	if k, ok := strings.CutPrefix(path, "instance/attributes/"); ok {
		if v, ok := in.Attrs[k]; ok {
			return v, text, nil
		}
	}
	return "", "", errNotFound
}

// dir lists a directory's keys, or its contents as JSON when recursive.
func dir(m map[string]string, recursive bool) (string, string, error) {
	if recursive {
		b, _ := json.Marshal(m)
		return string(b), "application/json", nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "\n")
	}
	return b.String(), "application/text", nil
}
