package cloud

import (
	"github.com/hashicorp/go-discover/provider/aliyun"
	"github.com/hashicorp/go-discover/provider/aws"
	"github.com/hashicorp/go-discover/provider/azure"
	"github.com/hashicorp/go-discover/provider/digitalocean"
	"github.com/hashicorp/go-discover/provider/gce"
	"github.com/hashicorp/go-discover/provider/linode"
	"github.com/hashicorp/go-discover/provider/mdns"
	"github.com/hashicorp/go-discover/provider/os"
	"github.com/hashicorp/go-discover/provider/packet"
	"github.com/hashicorp/go-discover/provider/scaleway"
	"github.com/hashicorp/go-discover/provider/softlayer"
	"github.com/hashicorp/go-discover/provider/tencentcloud"
	"github.com/hashicorp/go-discover/provider/triton"
)

// go-discover's providers but vSphere (providers_vsphere.go), under the
// names go-discover gives them. Variables initialise before init runs.
var _ = func() bool {
	for name, l := range map[string]lookup{
		"aliyun":       &aliyun.Provider{},
		"aws":          &aws.Provider{},
		"azure":        &azure.Provider{},
		"digitalocean": &digitalocean.Provider{},
		"gce":          &gce.Provider{},
		"linode":       &linode.Provider{},
		"mdns":         &mdns.Provider{},
		"os":           &os.Provider{},
		"packet":       &packet.Provider{},
		"scaleway":     &scaleway.Provider{},
		"softlayer":    &softlayer.Provider{},
		"tencentcloud": &tencentcloud.Provider{},
		"triton":       &triton.Provider{},
	} {
		providers[name] = l
	}
	return true
}()
