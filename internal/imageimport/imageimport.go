// Package imageimport makes a Docker image from one static binary, with
// ImageImport of a tarball: how flotilla's sandbox, benches and tests get
// images on a machine with no registry.
package imageimport

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/moby/moby/client"
)

// Binary makes image ref holding only the file at binary, as /name, which
// is also its entrypoint. The binary must be statically linked. changes
// are further Dockerfile instructions for the image's config (e.g. a
// HEALTHCHECK), as `docker import --change` takes them.
func Binary(ctx context.Context, engine *client.Client, binary, ref, name string, changes ...string) error {
	data, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	rc, err := engine.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, ref,
		client.ImageImportOptions{Changes: append([]string{fmt.Sprintf(`ENTRYPOINT ["/%s"]`, name)}, changes...)})
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	// The engine reports a failed import in the stream, not the status.
	if bytes.Contains(out, []byte(`"errorDetail"`)) {
		return fmt.Errorf("import %s: %s", ref, out)
	}
	return nil
}
