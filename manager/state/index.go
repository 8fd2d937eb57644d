package state

import "fmt"

// stringIndex is a memdb index on a string of an object, read by a
// function: memdb's StringFieldIndex finds the field by reflection on
// every insert, which was a tenth of what a manager allocated while
// placing 10,000 tasks. Keys are the string and a NUL, as
// StringFieldIndex makes them; an empty string is no key (AllowMissing).
type stringIndex func(obj any) string

func (f stringIndex) FromObject(obj any) (bool, []byte, error) {
	v := f(obj)
	if v == "" {
		return false, nil, nil
	}
	return true, append([]byte(v), 0), nil
}

func (f stringIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("state: an index takes one argument, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("state: an index argument must be a string, got %T", args[0])
	}
	return append([]byte(s), 0), nil
}

// byID indexes any object by its ID.
var byID = stringIndex(func(o any) string { return o.(Object).GetID() })
