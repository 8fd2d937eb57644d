package gcetest

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
)

// keySyntax is the real API's rule for metadata keys.
var keySyntax = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)

// Size limits of the real API.
const (
	maxValue = 256 << 10
	maxTotal = 512 << 10
)

// serveCompute serves the Compute API calls on the project's metadata.
func (s *Server) serveCompute(w http.ResponseWriter, r *http.Request) {
	by, ok := s.caller(r)
	if !ok {
		apiErr(w, http.StatusUnauthorized, "required", "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/compute/v1/projects/")
	if !ok {
		apiErr(w, http.StatusNotFound, "notFound", "The requested URL was not found on this server.")
		return
	}
	project, call, _ := strings.Cut(rest, "/")
	if project != s.Project {
		apiErr(w, http.StatusNotFound, "notFound", "The resource 'projects/"+project+"' was not found")
		return
	}
	switch {
	case call == "" && r.Method == http.MethodGet:
		s.getProject(w)
	case call == "setCommonInstanceMetadata" && r.Method == http.MethodPost:
		s.setCommonMetadata(w, r, by)
	case strings.HasPrefix(call, "global/operations/") && r.Method == http.MethodGet:
		s.getOperation(w, strings.TrimPrefix(call, "global/operations/"))
	default:
		apiErr(w, http.StatusNotFound, "notFound", "The requested URL was not found on this server.")
	}
}

// caller checks the bearer token against those the metadata servers gave.
func (s *Server) caller(r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name, ok := s.tokens[tok]
	return name, ok
}

func (s *Server) getProject(w http.ResponseWriter) {
	s.mu.Lock()
	md := map[string]any{"kind": "compute#metadata", "fingerprint": s.fingerprint, "items": append([]Item{}, s.items...)}
	p := map[string]any{"kind": "compute#project", "name": s.Project, "id": s.Numeric,
		"selfLink": s.computeURL + "projects/" + s.Project, "commonInstanceMetadata": md}
	s.mu.Unlock()
	// Read first, then wait: every gathered reader holds the same
	// fingerprint, whatever the first released one writes.
	s.awaitGather()
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) setCommonMetadata(w http.ResponseWriter, r *http.Request, by string) {
	var req struct {
		Fingerprint string `json:"fingerprint"`
		Items       []Item `json:"items"`
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 2*maxTotal))
	if err != nil || json.Unmarshal(b, &req) != nil {
		apiErr(w, http.StatusBadRequest, "parseError", "Parse Error")
		return
	}
	seen := map[string]bool{}
	total := 0
	for _, it := range req.Items {
		switch {
		case !keySyntax.MatchString(it.Key):
			apiErr(w, http.StatusBadRequest, "invalid", "Invalid value for field 'resource.items[].key': '"+it.Key+"'. Must be a match of regex '[a-zA-Z0-9-_]{1,128}'")
			return
		case seen[it.Key]:
			apiErr(w, http.StatusBadRequest, "invalid", "Duplicate metadata key '"+it.Key+"'")
			return
		case len(it.Value) > maxValue:
			apiErr(w, http.StatusBadRequest, "invalid", "Value for metadata key '"+it.Key+"' is too large")
			return
		}
		seen[it.Key] = true
		total += len(it.Key) + len(it.Value)
	}
	if total > maxTotal {
		apiErr(w, http.StatusBadRequest, "invalid", "Metadata is too large")
		return
	}
	s.mu.Lock()
	if req.Fingerprint != s.fingerprint {
		s.conflicts++
		s.mu.Unlock()
		apiErr(w, http.StatusPreconditionFailed, "conditionNotMet", "Supplied fingerprint does not match current metadata fingerprint.")
		return
	}
	s.replaceLocked(by, append([]Item{}, req.Items...))
	name := "operation-" + randomHex(12)
	s.ops[name] = false // RUNNING until first polled, as a real operation may be
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.operation(name, "RUNNING"))
}

func (s *Server) getOperation(w http.ResponseWriter, name string) {
	s.mu.Lock()
	_, ok := s.ops[name]
	if ok {
		s.ops[name] = true
	}
	s.mu.Unlock()
	if !ok {
		apiErr(w, http.StatusNotFound, "notFound", "The resource 'projects/"+s.Project+"/global/operations/"+name+"' was not found")
		return
	}
	writeJSON(w, http.StatusOK, s.operation(name, "DONE"))
}

func (s *Server) operation(name, status string) map[string]any {
	return map[string]any{"kind": "compute#operation", "name": name, "status": status,
		"operationType": "compute.projects.setCommonInstanceMetadata",
		"targetLink":    s.computeURL + "projects/" + s.Project,
		"selfLink":      s.computeURL + "projects/" + s.Project + "/global/operations/" + name}
}

func apiErr(w http.ResponseWriter, code int, reason, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "message": msg,
		"errors": []map[string]string{{"domain": "global", "reason": reason, "message": msg}}}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
