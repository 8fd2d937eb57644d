// Package gce lets flotilla nodes on Google Compute Engine form and join a
// swarm by themselves: settings come from instance and project attributes
// on the metadata server; the first manager is chosen by a compare-and-set
// on the project metadata's fingerprint (Compute API
// setCommonInstanceMetadata); the leader publishes the join tokens and the
// manager addresses back into the project metadata, where every other
// instance waits for them.
//
// Reads go through cloud.google.com/go/compute/metadata, which honours
// GCE_METADATA_HOST; writes go to the Compute API at ComputeEndpoint. Tests
// point both at the emulator in gcetest; the code is the same.
package gce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/compute/metadata"
)

// Attributes read from the instance first, then the project.
const (
	AttrCluster          = "flotilla-cluster"
	AttrRole             = "flotilla-role"
	AttrManagersExpected = "flotilla-managers-expected"
)

// DefaultCluster is the cluster name when no attribute names one.
const DefaultCluster = "flotilla"

// Per-cluster project attributes, flotilla-<cluster>-<suffix>.
const (
	suffixInit         = "init"          // the claim of the manager that initialises the swarm
	suffixManagerToken = "manager-token" // published by the leader
	suffixWorkerToken  = "worker-token"
	suffixManagers     = "managers" // live managers' cluster addresses, leader first, comma-separated
	suffixLeader       = "leader"
)

// Key is the project attribute that holds suffix for cluster.
func Key(cluster, suffix string) string { return "flotilla-" + cluster + "-" + suffix }

// clusterName keeps keys inside the metadata key syntax [a-zA-Z0-9-_]{1,128}.
var clusterName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// Settings is what an instance learned about itself.
type Settings struct {
	Project  string
	Instance string
	IP       string // instance/network-interfaces/0/ip
	Cluster  string
	Role     string // manager or worker
	// ManagersExpected caps how many managers the bootstrap makes: a
	// manager-role instance that finds that many live managers published
	// joins as a worker. 0: no cap.
	ManagersExpected int
}

// Metadata reads the metadata server.
type Metadata struct {
	c *metadata.Client
}

// NewMetadata returns a client of the metadata server at GCE_METADATA_HOST,
// or of the real one (169.254.169.254) when that is unset.
func NewMetadata() *Metadata {
	// No Client given: metadata makes one with timeouts for plain reads and
	// one without for wait_for_change.
	return &Metadata{c: metadata.NewWithOptions(&metadata.Options{})}
}

// Host is where the metadata requests go, for messages.
func Host() string {
	if h := os.Getenv("GCE_METADATA_HOST"); h != "" {
		return h
	}
	return "169.254.169.254"
}

// attr returns the instance attribute, else the project attribute, else "".
func (m *Metadata) attr(ctx context.Context, name string) (string, error) {
	v, err := m.c.InstanceAttributeValueWithContext(ctx, name)
	if err == nil {
		return strings.TrimSpace(v), nil
	}
	if !isNotDefined(err) {
		return "", err
	}
	v, err = m.c.ProjectAttributeValueWithContext(ctx, name)
	if err == nil {
		return strings.TrimSpace(v), nil
	}
	if isNotDefined(err) {
		return "", nil
	}
	return "", err
}

func isNotDefined(err error) bool {
	var nd metadata.NotDefinedError
	return errors.As(err, &nd)
}

// LoadSettings reads the instance's identity and flotilla attributes.
// roleFlag, when set, wins over the attribute.
func (m *Metadata) LoadSettings(ctx context.Context, roleFlag string) (Settings, error) {
	var s Settings
	var err error
	wrap := func(what string, err error) error {
		return fmt.Errorf("read %s from the GCE metadata server at %s: %w (is this a GCE instance? GCE_METADATA_HOST overrides the server's address)", what, Host(), err)
	}
	if s.Project, err = m.c.ProjectIDWithContext(ctx); err != nil {
		return s, wrap("the project ID", err)
	}
	if s.Instance, err = m.c.InstanceNameWithContext(ctx); err != nil {
		return s, wrap("the instance name", err)
	}
	if s.IP, err = m.c.InternalIPWithContext(ctx); err != nil {
		return s, wrap("the instance's IP", err)
	}
	if s.Cluster, err = m.attr(ctx, AttrCluster); err != nil {
		return s, wrap(AttrCluster, err)
	}
	if s.Cluster == "" {
		s.Cluster = DefaultCluster
	}
	if !clusterName.MatchString(s.Cluster) {
		return s, fmt.Errorf("attribute %s=%q: a cluster name is 1 to 40 lowercase letters, digits and dashes, starting and ending with a letter or digit", AttrCluster, s.Cluster)
	}
	s.Role = roleFlag
	if s.Role == "" {
		if s.Role, err = m.attr(ctx, AttrRole); err != nil {
			return s, wrap(AttrRole, err)
		}
	}
	if s.Role == "" {
		s.Role = "worker"
	}
	if s.Role != "manager" && s.Role != "worker" {
		return s, fmt.Errorf("role %q (from --role or attribute %s): it must be manager or worker", s.Role, AttrRole)
	}
	exp, err := m.attr(ctx, AttrManagersExpected)
	if err != nil {
		return s, wrap(AttrManagersExpected, err)
	}
	if exp != "" {
		n, err := strconv.Atoi(exp)
		if err != nil || n < 0 {
			return s, fmt.Errorf("attribute %s=%q: it must be a whole number of managers (0: no limit)", AttrManagersExpected, exp)
		}
		s.ManagersExpected = n
	}
	return s, nil
}

// ProjectAttributes returns every project attribute.
func (m *Metadata) ProjectAttributes(ctx context.Context) (map[string]string, error) {
	v, err := m.c.GetWithContext(ctx, "project/attributes/?recursive=true")
	if err != nil {
		return nil, err
	}
	return decodeAttrs(v)
}

func decodeAttrs(v string) (map[string]string, error) {
	attrs := map[string]string{}
	if strings.TrimSpace(v) == "" {
		return attrs, nil
	}
	if err := json.Unmarshal([]byte(v), &attrs); err != nil {
		return nil, fmt.Errorf("project attributes from the metadata server are not a JSON object: %w", err)
	}
	return attrs, nil
}

// errStop ends a subscription from inside its callback.
var errStop = errors.New("stop watching")

// WatchProject calls fn with the project attributes now and after every
// change (wait_for_change with the last ETag), until fn returns true, an
// error, or ctx ends. The server ends each wait after waitSec seconds so
// that fn also runs now and then without a change.
func (m *Metadata) WatchProject(ctx context.Context, waitSec int, fn func(map[string]string) (bool, error)) error {
	var fnErr error
	err := m.c.SubscribeWithContext(ctx, "project/attributes/?recursive=true&timeout_sec="+strconv.Itoa(waitSec),
		func(ctx context.Context, v string, ok bool) error {
			attrs := map[string]string{}
			if ok {
				var err error
				if attrs, err = decodeAttrs(v); err != nil {
					return err
				}
			}
			done, err := fn(attrs)
			if err != nil {
				fnErr = err
				return err
			}
			if done {
				return errStop
			}
			return nil
		})
	if errors.Is(err, errStop) {
		return nil
	}
	if fnErr != nil {
		return fnErr
	}
	return err
}

// token is an OAuth2 access token of the instance's service account.
type token struct {
	value  string
	expiry time.Time
}

// serviceAccountToken fetches the default service account's access token.
func (m *Metadata) serviceAccountToken(ctx context.Context) (token, error) {
	v, err := m.c.GetWithContext(ctx, "instance/service-accounts/default/token")
	if err != nil {
		return token{}, fmt.Errorf("get the instance's service-account token from the metadata server at %s: %w (does the instance have a service account?)", Host(), err)
	}
	var t struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal([]byte(v), &t); err != nil || t.AccessToken == "" {
		return token{}, fmt.Errorf("the metadata server's service-account token is unusable: %q", v)
	}
	return token{value: t.AccessToken, expiry: time.Now().Add(time.Duration(t.ExpiresIn) * time.Second)}, nil
}
