package ca

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadPool(t *testing.T) {
	dir := t.TempDir()
	root := newTestRoot(t, testCluster)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	good := write("ca.pem", root.CertPEM)
	pool, err := LoadPool(good)
	if err != nil {
		t.Fatalf("LoadPool(%s): %v", good, err)
	}
	if !pool.Equal(root.Pool()) {
		t.Error("the pool does not hold exactly the root in the file")
	}

	missing := filepath.Join(dir, "missing.pem")
	keyOnly := write("key.pem", root.KeyPEM)
	empty := write("empty.pem", nil)
	for _, tc := range []struct{ path, want string }{
		{missing, "cannot read the CA certificate file: open " + missing},
		{keyOnly, "CA certificate file " + keyOnly + " holds no usable certificate"},
		{empty, "CA certificate file " + empty + " holds no usable certificate"},
	} {
		if _, err := LoadPool(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadPool(%s) = %v, want an error saying %q", tc.path, err, tc.want)
		}
	}
}
