package state

// mustCopy deep-copies through JSON. Objects are small and copies happen on
// writes and API reads, never in a hot scheduling loop.
func mustCopy(src, dst any) {
	b, err := marshalJSON(src)
	if err != nil {
		panic(err)
	}
	if err := unmarshalJSON(b, dst); err != nil {
		panic(err)
	}
}
