//go:build !linux

package agent

import "errors"

func (e *Executor) filesBase(create bool) (string, error) {
	if !create {
		return "", nil
	}
	return "", errors.New("secret and config files need a tmpfs, which this system has not")
}

func processOwner(string) (fileOwner, error) { return fileOwner{-1, -1}, nil }

func (e *Executor) removeFormerTaskFiles() {}

func (e *Executor) dropEmptyFilesBase() {}
