package nodeapi

import (
	"encoding/json"
	"io"
)

// The node RPC bodies (heartbeats, assignments, status reports, relays)
// stay in encoding/json. go-json, which the Raft log uses, encodes a
// node's task set 3.6× and decodes it 3.9× faster
// (BenchmarkAssignmentsCodec), but that is 0.1 s of CPU over a
// 10,000-task wave of 1,000 nodes, and its compiled codecs and buffer
// pools for these types kept 3 – 6 MB more heap on the leader.

// Marshal encodes a node RPC body.
func Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes a node RPC body.
func Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// maxAnswer bounds a node RPC answer read into memory.
const maxAnswer = 16 << 20

// ReadBody reads a request or answer whole, up to limit bytes, in one
// buffer when its length is known (HTTP/2 gives it for a body written at
// once) rather than in a buffer grown and copied as it goes.
func ReadBody(body io.Reader, length, limit int64) ([]byte, error) {
	if length <= 0 || length > limit {
		return io.ReadAll(io.LimitReader(body, limit))
	}
	buf := make([]byte, length)
	n, err := io.ReadFull(body, buf)
	if err == io.ErrUnexpectedEOF {
		err = nil // shorter than said: the decoder finds what is missing
	}
	return buf[:n], err
}
