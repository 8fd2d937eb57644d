//go:build !unix

package sandbox

import (
	"errors"
	"io"
	"os/exec"
)

var errUnsupported = errors.New("the sandbox needs a unix-like system")

func setNewSession(*exec.Cmd)          {}
func terminateGroup(int) error         { return errUnsupported }
func killGroup(int) error              { return errUnsupported }
func processAlive(int) bool            { return false }
func processArgs(int) ([]string, bool) { return nil, false }
func lockDir(string) (func(), error)   { return nil, errUnsupported }

func removeServices(*Cluster, io.Writer) {}

func stopTaskProcesses(string) {}
