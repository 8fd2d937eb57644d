package discovery

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// GoDiscoverArgs reads the arguments of a "provider=NAME k=v ..." spec
// for one of go-discover's providers: port (flotilla's key, not passed
// on) is the cluster port put on the addresses found, DefaultPort unless
// given; the other values are URL-encoded, as in go-discover's own
// syntax ("tag_value=a%20b"), and come back decoded.
func GoDiscoverArgs(args map[string]string) (decoded map[string]string, port string, err error) {
	port = DefaultPort
	if p, ok := args["port"]; ok {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return nil, "", fmt.Errorf("provider=%s: port=%q is not a port number", args["provider"], p)
		}
		port = p
	}
	decoded = map[string]string{"provider": args["provider"]}
	for k, v := range args {
		if k == "port" || k == "provider" {
			continue
		}
		d, err := url.QueryUnescape(v)
		if err != nil {
			return nil, "", fmt.Errorf("provider=%s: %s=%q: %v (values are URL-encoded: write %%20 for a space)", args["provider"], k, v, err)
		}
		decoded[k] = d
	}
	return decoded, port, nil
}

// CanonicalSpec writes args back as a spec in a stable order: provider
// first, then the other keys sorted, without those left out.
func CanonicalSpec(args map[string]string, leaveOut ...string) string {
	var keys []string
	for k := range args {
		if k != "provider" && !slices.Contains(leaveOut, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := []string{"provider=" + args["provider"]}
	for _, k := range keys {
		parts = append(parts, k+"="+args[k])
	}
	return strings.Join(parts, " ")
}
