package engineapi

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// host holds the facts about the machine reported by /info and /version.
type host struct {
	operatingSystem string // PRETTY_NAME of os-release
	osVersion       string // VERSION_ID of os-release
	kernelVersion   string
	architecture    string // as uname -m names it
	memTotal        int64  // bytes
}

// hostFacts reads the host facts once; anything unreadable is left empty.
var hostFacts = sync.OnceValue(func() host {
	h := host{architecture: unameArch(runtime.GOARCH)}
	h.operatingSystem, h.osVersion = readOSRelease()
	if h.operatingSystem == "" {
		h.operatingSystem = runtime.GOOS
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.kernelVersion = strings.TrimSpace(string(b))
	}
	h.memTotal = readMemTotal()
	return h
})

func readOSRelease() (pretty, version string) {
	for _, path := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), "=")
			if !ok {
				continue
			}
			if uq, err := strconv.Unquote(v); err == nil {
				v = uq
			} else {
				v = strings.Trim(v, `'"`)
			}
			switch k {
			case "PRETTY_NAME":
				pretty = v
			case "VERSION_ID":
				version = v
			}
		}
		return pretty, version
	}
	return "", ""
}

// readMemTotal returns MemTotal of /proc/meminfo in bytes, or 0.
func readMemTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

// unameArch names GOARCH the way dockerd's /info does (uname -m).
func unameArch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i686"
	default:
		return goarch
	}
}
