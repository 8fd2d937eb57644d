package engineapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
)

// writeJSONList writes the items for which keep is true as a JSON array,
// one item at a time. Encoded whole, `docker service ps` of a 10,000-task
// cluster built a 9 MB body (in a buffer grown to 16 MB) next to the
// slice of copies it came from: on a manager that otherwise holds 70 MB,
// every such request showed in its resident memory.
func writeJSONList[T any](w http.ResponseWriter, items []T, keep func(*T) bool) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	var one bytes.Buffer
	enc := json.NewEncoder(&one)
	enc.SetEscapeHTML(false)
	sep := byte('[')
	for i := range items {
		if keep != nil && !keep(&items[i]) {
			continue
		}
		one.Reset()
		if err := enc.Encode(&items[i]); err != nil {
			return err
		}
		_ = bw.WriteByte(sep)
		_, _ = bw.Write(bytes.TrimSuffix(one.Bytes(), []byte("\n")))
		sep = ','
	}
	if sep == '[' {
		_ = bw.WriteByte('[')
	}
	_, _ = bw.WriteString("]\n")
	return bw.Flush()
}
