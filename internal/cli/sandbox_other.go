//go:build !unix

package cli

import (
	"errors"
	"io"
	"os/exec"
)

var errSandboxUnsupported = errors.New("the sandbox needs a unix-like system")

func setNewSession(*exec.Cmd)               {}
func terminateGroup(int) error              { return errSandboxUnsupported }
func killGroup(int) error                   { return errSandboxUnsupported }
func processAlive(int) bool                 { return false }
func processArgs(int) ([]string, bool)      { return nil, false }
func lockSandboxDir(string) (func(), error) { return nil, errSandboxUnsupported }

func removeSandboxServices(*Sandbox, io.Writer) {}

func stopTaskProcesses(string) {}
