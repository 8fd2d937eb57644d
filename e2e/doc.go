// Package e2e holds flotilla's end-to-end tests: they build the flotilla
// binary once, run every node as a separate daemon process on 127.0.0.1
// ports, drive the cluster through the CLI (and the docker CLI when it is
// installed), and check what a user would see.
//
// Run them with
//
//	go test -count=1 ./e2e/
//
// `go test -short` skips them. A failing test prints the tail of each
// daemon's log.
package e2e
