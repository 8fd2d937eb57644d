//go:build vsphere

package cloud

import "github.com/hashicorp/go-discover/provider/vsphere"

// vSphere's SDK (govmomi) is large: built in only on request,
// `go build -tags vsphere`.
var _ = func() bool {
	providers["vsphere"] = &vsphere.Provider{}
	return true
}()
