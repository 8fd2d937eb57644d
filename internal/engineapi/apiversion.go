package engineapi

import (
	"fmt"
	"strconv"
	"strings"
)

// isVersion reports whether s is a dotted version such as "1.47".
func isVersion(s string) bool {
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		for _, c := range part {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// compareVersions compares dotted versions numerically: -1 if a < b, 0 if
// equal, +1 if a > b. Missing parts count as 0 ("1" == "1.0").
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y uint64
		if i < len(as) {
			x, _ = strconv.ParseUint(as[i], 10, 64)
		}
		if i < len(bs) {
			y, _ = strconv.ParseUint(bs[i], 10, 64)
		}
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
	}
	return 0
}

// checkVersion returns the error message for a request at API version v
// for route rte, or "" if v is served. The messages are dockerd's.
func checkVersion(v string, rte *compiledRoute) string {
	if compareVersions(v, MinAPIVersion) < 0 {
		return fmt.Sprintf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", v, MinAPIVersion)
	}
	if compareVersions(v, APIVersion) > 0 {
		return fmt.Sprintf("client version %s is too new. Maximum supported API version is %s", v, APIVersion)
	}
	if rte.minVersion != "" && compareVersions(v, rte.minVersion) < 0 {
		return fmt.Sprintf("%s %s requires minimum API version %s", rte.method, rte.path, rte.minVersion)
	}
	return ""
}
