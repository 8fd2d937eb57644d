// Package webui serves flotilla's read-only web UI at /ui/: cluster
// health, nodes, services, tasks per node and recent events, rendered on
// the server with html/template (which escapes every value) and kept
// live by a few lines of JavaScript that re-fetch the page's live part.
// There is no build step: templates, CSS and JS are embedded files.
package webui

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// Prefix is the path the UI is served under.
const Prefix = "/ui/"

// Source is the cluster state the UI reads: the Engine API's backend
// (internal/daemon) implements it, reading this manager's replica.
type Source interface {
	SwarmInfo(ctx context.Context) swarm.Info
	NodeName() string
	Nodes(ctx context.Context) ([]swarm.Node, error)
	Services(ctx context.Context, withStatus bool) ([]swarm.Service, error)
	Tasks(ctx context.Context, upToDateOnly bool) ([]swarm.Task, error)
	SwarmEvents(ctx context.Context, after int64) ([]events.Message, <-chan struct{}, error)
	SwarmEventClock(ctx context.Context) (int64, error)
}

//go:embed templates/*.html static/*
var files embed.FS

var pageTmpl = template.Must(template.ParseFS(files, "templates/*.html"))

// readTimeout bounds the reads behind one refresh.
const readTimeout = 5 * time.Second

type handler struct {
	src    Source
	recent recent
	static http.Handler
}

// New returns the handler of every path under Prefix (and Prefix without
// its slash, which redirects). It only answers GET and HEAD.
func New(src Source) http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err)
	}
	return &handler{src: src, static: http.StripPrefix(Prefix+"static/", http.FileServerFS(sub))}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the web UI is read-only: it answers GET and HEAD only; change the cluster through the API (flotilla or docker CLI)", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	switch p := r.URL.Path; {
	case p == strings.TrimSuffix(Prefix, "/"):
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
	case p == Prefix:
		h.render(w, r, "page")
	case p == Prefix+"live":
		h.render(w, r, "live")
	case strings.HasPrefix(p, Prefix+"static/"):
		h.static.ServeHTTP(w, r)
	default:
		http.Error(w, "no such page in the web UI; it is at "+Prefix, http.StatusNotFound)
	}
}

// render writes the whole page or its live part.
func (h *handler) render(w http.ResponseWriter, r *http.Request, name string) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	v, status := h.view(ctx)
	var buf bytes.Buffer
	if err := pageTmpl.ExecuteTemplate(&buf, name, v); err != nil {
		slog.Error("webui: rendering", "template", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// view reads the cluster state; on a worker or outside a swarm it is a
// view that says so, with status 503.
func (h *handler) view(ctx context.Context) (view, int) {
	now := time.Now()
	in := input{servedBy: h.src.NodeName(), now: now}
	var err error
	in.nodes, err = h.src.Nodes(ctx)
	if err == nil {
		in.services, err = h.src.Services(ctx, true)
	}
	if err == nil {
		in.tasks, err = h.src.Tasks(ctx, false)
	}
	if err == nil && slices.ContainsFunc(in.services, updating) {
		var current []swarm.Task
		current, err = h.src.Tasks(ctx, true)
		in.updated = countUpdated(current)
	}
	if err == nil {
		in.events, err = h.recent.read(ctx, h.src)
	}
	if err != nil {
		return h.problem(ctx, in, err), http.StatusServiceUnavailable
	}
	return buildView(in), http.StatusOK
}

func (h *handler) problem(ctx context.Context, in input, err error) view {
	v := view{ServedBy: in.servedBy, Updated: in.now.UTC().Format("15:04:05 UTC")}
	switch {
	case errors.Is(err, errdefs.ErrNotManager):
		v.Problem = "This node is a worker: the web UI is served by managers. Open /ui/ on a manager (its --ui-addr, or its API socket)."
		for _, p := range h.src.SwarmInfo(ctx).RemoteManagers {
			v.Managers = append(v.Managers, p.Addr)
		}
	case errors.Is(err, errdefs.ErrNotInSwarm):
		v.Problem = "This node is in no swarm: there is no cluster to show. Run 'flotilla swarm init' or 'flotilla swarm join' on it, or open /ui/ on a manager."
	default:
		v.Problem = "Cannot read the cluster state on this manager: " + err.Error()
	}
	return v
}
