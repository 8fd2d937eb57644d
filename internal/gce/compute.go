package gce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// EnvComputeEndpoint overrides the Compute API's base URL (tests, private
// endpoints).
const EnvComputeEndpoint = "FLOTILLA_GCE_COMPUTE_ENDPOINT"

// DefaultComputeEndpoint is the Compute Engine API v1.
const DefaultComputeEndpoint = "https://compute.googleapis.com/compute/v1/"

// ComputeEndpoint is the base URL writes go to.
func ComputeEndpoint() string {
	if e := os.Getenv(EnvComputeEndpoint); e != "" {
		return strings.TrimRight(e, "/") + "/"
	}
	return DefaultComputeEndpoint
}

// ErrFingerprint means the project metadata changed since it was read (412
// conditionNotMet): read it again and retry.
var ErrFingerprint = errors.New("project metadata changed since it was read (fingerprint mismatch)")

// Item is one metadata key/value.
type Item struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// CommonMetadata is the project's common instance metadata.
type CommonMetadata struct {
	Fingerprint string `json:"fingerprint"`
	Items       []Item `json:"items,omitempty"`
}

// Get returns the value of key.
func (c CommonMetadata) Get(key string) (string, bool) {
	for _, it := range c.Items {
		if it.Key == key {
			return it.Value, true
		}
	}
	return "", false
}

// Compute calls the Compute API with the instance's service-account token.
type Compute struct {
	Project  string
	Endpoint string
	md       *Metadata
	hc       *http.Client

	mu  sync.Mutex
	tok token
}

// NewCompute returns a client for project at ComputeEndpoint().
func NewCompute(md *Metadata, project string) *Compute {
	return &Compute{Project: project, Endpoint: ComputeEndpoint(), md: md, hc: &http.Client{Timeout: 30 * time.Second}}
}

func (c *Compute) token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok.value != "" && time.Until(c.tok.expiry) > time.Minute {
		return c.tok.value, nil
	}
	t, err := c.md.serviceAccountToken(ctx)
	if err != nil {
		return "", err
	}
	c.tok = t
	return t.value, nil
}

// apiError is the Compute API's error body.
type apiError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Errors  []struct {
			Reason string `json:"reason"`
		} `json:"errors"`
	} `json:"error"`
}

func (c *Compute) do(ctx context.Context, method, path string, in, out any) error {
	tok, err := c.token(ctx)
	if err != nil {
		return err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	u := c.Endpoint + path
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("Compute API %s %s: %w", method, u, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("Compute API %s %s: %w", method, u, err)
	}
	if res.StatusCode/100 != 2 {
		var ae apiError
		_ = json.Unmarshal(b, &ae)
		reason := ""
		if len(ae.Error.Errors) > 0 {
			reason = ae.Error.Errors[0].Reason
		}
		if res.StatusCode == http.StatusPreconditionFailed || reason == "conditionNotMet" {
			return ErrFingerprint
		}
		msg := ae.Error.Message
		if msg == "" {
			msg = strings.TrimSpace(string(b))
		}
		hint := ""
		if res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden {
			hint = " (the instance's service account needs the compute scope and permission to set project metadata)"
		}
		return fmt.Errorf("Compute API %s %s: %s: %s%s", method, u, res.Status, msg, hint)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("Compute API %s %s: unreadable answer: %w", method, u, err)
		}
	}
	return nil
}

// CommonMetadata reads the project's metadata and its fingerprint.
func (c *Compute) CommonMetadata(ctx context.Context) (CommonMetadata, error) {
	var p struct {
		CommonInstanceMetadata CommonMetadata `json:"commonInstanceMetadata"`
	}
	err := c.do(ctx, http.MethodGet, "projects/"+c.Project, nil, &p)
	return p.CommonInstanceMetadata, err
}

type operation struct {
	Name     string `json:"name"`
	Status   string `json:"status"`
	SelfLink string `json:"selfLink"`
	Error    *struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	} `json:"error"`
}

// SetCommonMetadata replaces the project's metadata if its fingerprint is
// still fp (else ErrFingerprint), and waits for the operation to finish.
func (c *Compute) SetCommonMetadata(ctx context.Context, fp string, items []Item) error {
	var op operation
	if err := c.do(ctx, http.MethodPost, "projects/"+c.Project+"/setCommonInstanceMetadata",
		CommonMetadata{Fingerprint: fp, Items: items}, &op); err != nil {
		return err
	}
	for delay := 50 * time.Millisecond; op.Status != "DONE"; delay = min(delay*2, 2*time.Second) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		if err := c.do(ctx, http.MethodGet, "projects/"+c.Project+"/global/operations/"+op.Name, nil, &op); err != nil {
			return err
		}
	}
	if op.Error != nil && len(op.Error.Errors) > 0 {
		e := op.Error.Errors[0]
		if e.Code == "CONDITION_NOT_MET" {
			return ErrFingerprint
		}
		return fmt.Errorf("setCommonInstanceMetadata operation %s failed: %s: %s", op.Name, e.Code, e.Message)
	}
	return nil
}

// Update is a compare-and-set loop on the project metadata: it reads the
// attributes, lets change edit them (returning false to write nothing), and
// writes them back with the fingerprint it read; when another writer got in
// between, it reads again and retries.
func (c *Compute) Update(ctx context.Context, change func(attrs map[string]string) (bool, error)) error {
	for attempt := 0; ; attempt++ {
		cur, err := c.CommonMetadata(ctx)
		if err != nil {
			return err
		}
		attrs := make(map[string]string, len(cur.Items))
		for _, it := range cur.Items {
			attrs[it.Key] = it.Value
		}
		write, err := change(attrs)
		if err != nil || !write {
			return err
		}
		err = c.SetCommonMetadata(ctx, cur.Fingerprint, mergeItems(cur.Items, attrs))
		if !errors.Is(err, ErrFingerprint) {
			return err
		}
		// Someone else wrote first; back off a little so that a crowd of
		// writers does not collide again in lockstep.
		wait := time.Duration(rand.Int64N(int64(50*time.Millisecond) << min(attempt, 4)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// mergeItems keeps the order of the items read, drops deleted keys and
// appends new ones in key order.
func mergeItems(old []Item, attrs map[string]string) []Item {
	out := make([]Item, 0, len(attrs))
	seen := map[string]bool{}
	for _, it := range old {
		if v, ok := attrs[it.Key]; ok {
			out = append(out, Item{Key: it.Key, Value: v})
			seen[it.Key] = true
		}
	}
	var added []string
	for k := range attrs {
		if !seen[k] {
			added = append(added, k)
		}
	}
	slices.Sort(added)
	for _, k := range added {
		out = append(out, Item{Key: k, Value: attrs[k]})
	}
	return out
}
