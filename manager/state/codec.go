package state

import gojson "github.com/goccy/go-json"

// Every write is encoded once on the leader and decoded on every manager,
// and objects are deep-copied through JSON on each patch: these go through
// github.com/goccy/go-json, which follows encoding/json's rules (struct
// tags, Marshaler and TextMarshaler, RawMessage) about four times faster
// on tasks, so a wave of thousands of tasks costs each manager less CPU.
// Snapshots and the APIs keep encoding/json.

func marshalJSON(v any) ([]byte, error) { return gojson.Marshal(v) }

func unmarshalJSON(b []byte, v any) error { return gojson.Unmarshal(b, v) }

// MarshalJSON encodes a log entry's payload as the state package does.
func MarshalJSON(v any) ([]byte, error) { return marshalJSON(v) }

// UnmarshalJSON decodes a log entry's payload as the state package does.
func UnmarshalJSON(b []byte, v any) error { return unmarshalJSON(b, v) }
