package cli_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
)

// fakeCluster keeps services and networks on a fakeAPI the way a manager
// would, enough for the stack commands: create, list (label and name
// filters), inspect, update (version checked), remove.
type fakeCluster struct {
	*fakeAPI
	mu       sync.Mutex
	n        int
	services map[string]*swarm.Service
	networks map[string]*network.Summary
	blobs    map[string]map[string]*fakeBlob // "secrets"/"configs" → by ID
}

// fakeBlob is a secret or config as the fake keeps it.
type fakeBlob struct {
	ID   string
	Meta swarm.Meta
	Spec struct {
		Name   string
		Labels map[string]string
		Data   []byte `json:",omitempty"`
	}
}

func newFakeCluster(t *testing.T) *fakeCluster {
	c := &fakeCluster{fakeAPI: newFakeAPI(t), services: map[string]*swarm.Service{}, networks: map[string]*network.Summary{},
		blobs: map[string]map[string]*fakeBlob{"secrets": {}, "configs": {}}}
	for _, kind := range []string{"secrets", "configs"} {
		c.handle("GET /"+kind, func(w http.ResponseWriter, r *http.Request) {
			c.mu.Lock()
			defer c.mu.Unlock()
			out := []fakeBlob{}
			for _, b := range c.blobs[kind] {
				if labelsMatch(r, b.Spec.Labels) {
					out = append(out, *b)
				}
			}
			writeJSON(w, http.StatusOK, out)
		})
		c.handle("POST /"+kind+"/create", func(w http.ResponseWriter, r *http.Request) {
			b := &fakeBlob{}
			_ = json.NewDecoder(r.Body).Decode(&b.Spec)
			writeJSON(w, http.StatusCreated, map[string]string{"ID": c.addBlob(kind, b)})
		})
	}
	c.handle("GET /services", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		out := []swarm.Service{}
		for _, s := range c.services {
			if labelsMatch(r, s.Spec.Labels) {
				out = append(out, *s)
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	c.handle("POST /services/create", func(w http.ResponseWriter, r *http.Request) {
		var spec swarm.ServiceSpec
		_ = json.NewDecoder(r.Body).Decode(&spec)
		writeJSON(w, http.StatusCreated, swarm.ServiceCreateResponse{ID: c.addService(spec)})
	})
	c.handle("GET /networks", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		out := []network.Summary{}
		for _, n := range c.networks {
			if labelsMatch(r, n.Labels) {
				out = append(out, *n)
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	c.handle("POST /networks/create", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name   string
			Driver string
			Labels map[string]string
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		writeJSON(w, http.StatusCreated, network.CreateResponse{ID: c.addNetwork(req.Name, req.Driver, req.Labels)})
	})
	return c
}

// labelsMatch applies the request's label filters to labels.
func labelsMatch(r *http.Request, labels map[string]string) bool {
	var f map[string]map[string]bool
	if q := r.URL.Query().Get("filters"); q != "" {
		_ = json.Unmarshal([]byte(q), &f)
	}
	for want := range f["label"] {
		k, v, hasV := strings.Cut(want, "=")
		got, ok := labels[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	return true
}

func (c *fakeCluster) nextID(prefix string) string {
	c.n++
	return fmt.Sprintf("%s%023d", prefix, c.n)
}

// addService stores a service as the managers would (with network names
// turned into IDs) and installs its routes.
func (c *fakeCluster) addService(spec swarm.ServiceSpec) string {
	c.mu.Lock()
	id := c.nextID("s")
	c.resolveNetworks(&spec)
	s := &swarm.Service{ID: id, Spec: spec}
	s.Version.Index = 10
	c.services[id] = s
	c.mu.Unlock()
	c.handle("GET /services/"+id, func(w http.ResponseWriter, _ *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		writeJSON(w, http.StatusOK, c.services[id])
	})
	c.handle("POST /services/"+id+"/update", func(w http.ResponseWriter, r *http.Request) {
		var spec swarm.ServiceSpec
		_ = json.NewDecoder(r.Body).Decode(&spec)
		c.mu.Lock()
		defer c.mu.Unlock()
		s := c.services[id]
		if v := r.URL.Query().Get("version"); v != fmt.Sprint(s.Version.Index) {
			writeAPIError(w, http.StatusConflict, "update out of sequence")
			return
		}
		c.resolveNetworks(&spec)
		s.Spec = spec
		s.Version.Index++
		writeJSON(w, http.StatusOK, swarm.ServiceUpdateResponse{})
	})
	c.handle("DELETE /services/"+id, func(w http.ResponseWriter, _ *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.services, id)
		w.WriteHeader(http.StatusOK)
	})
	return id
}

func (c *fakeCluster) addBlob(kind string, b *fakeBlob) string {
	c.mu.Lock()
	b.ID = c.nextID(kind[:1])
	b.Meta.Version.Index = 5
	c.blobs[kind][b.ID] = b
	c.mu.Unlock()
	c.handle("POST /"+kind+"/"+b.ID+"/update", func(w http.ResponseWriter, r *http.Request) {
		var spec struct{ Data []byte }
		_ = json.NewDecoder(r.Body).Decode(&spec)
		c.mu.Lock()
		defer c.mu.Unlock()
		if string(spec.Data) != string(b.Spec.Data) {
			writeAPIError(w, http.StatusBadRequest, "only updates to Labels are allowed")
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	c.handle("DELETE /"+kind+"/"+b.ID, func(w http.ResponseWriter, _ *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.blobs[kind], b.ID)
		w.WriteHeader(http.StatusNoContent)
	})
	return b.ID
}

// blob returns the stored secret or config named name.
func (c *fakeCluster) blob(t *testing.T, kind, name string) *fakeBlob {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.blobs[kind] {
		if b.Spec.Name == name {
			return b
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return nil
}

func (c *fakeCluster) resolveNetworks(spec *swarm.ServiceSpec) {
	for i, a := range spec.TaskTemplate.Networks {
		for _, n := range c.networks {
			if n.Name == a.Target {
				spec.TaskTemplate.Networks[i].Target = n.ID
			}
		}
	}
}

func (c *fakeCluster) addNetwork(name, driver string, labels map[string]string) string {
	c.mu.Lock()
	id := c.nextID("n")
	c.networks[id] = &network.Summary{Network: network.Network{ID: id, Name: name, Driver: driver, Scope: "swarm", Labels: labels}}
	c.mu.Unlock()
	get := func(w http.ResponseWriter, _ *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		writeJSON(w, http.StatusOK, network.Inspect{Network: c.networks[id].Network})
	}
	c.handle("GET /networks/"+id, get)
	c.handle("GET /networks/"+name, get)
	c.handle("DELETE /networks/"+id, func(w http.ResponseWriter, _ *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.networks, id)
		w.WriteHeader(http.StatusNoContent)
	})
	return id
}

// service returns the stored service named name.
func (c *fakeCluster) service(t *testing.T, name string) swarm.Service {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.services {
		if s.Spec.Name == name {
			return *s
		}
	}
	t.Fatalf("no service %s", name)
	return swarm.Service{}
}

func (c *fakeCluster) networkID(t *testing.T, name string) string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.networks {
		if n.Name == name {
			return n.ID
		}
	}
	t.Fatalf("no network %s", name)
	return ""
}

func (c *fakeCluster) counts() (services, networks int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.services), len(c.networks)
}
