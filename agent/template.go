package agent

import (
	"bytes"
	"strconv"
	"strings"
	"text/template"

	"github.com/moby/moby/api/types/swarm"
)

// templateContext is what Docker's service templates can name, e.g.
// --env NAME={{.Service.Name}}-{{.Task.Slot}} or --hostname {{.Node.Hostname}}.
type templateContext struct {
	Service struct{ ID, Name string }
	Node    struct{ ID, Hostname string }
	Task    struct{ ID, Name, Slot string }
}

func newTemplateContext(nodeID, hostname, serviceName string, t swarm.Task) templateContext {
	var c templateContext
	c.Service.ID, c.Service.Name = t.ServiceID, serviceName
	c.Node.ID, c.Node.Hostname = nodeID, hostname
	c.Task.ID = t.ID
	if t.Slot != 0 {
		c.Task.Slot = strconv.Itoa(t.Slot)
		c.Task.Name = serviceName + "." + c.Task.Slot + "." + t.ID
	} else {
		c.Task.Name = serviceName + "." + nodeID + "." + t.ID
	}
	return c
}

// expand fills a Docker service template; text without "{{" or with a
// template that fails is used as written, as Docker leaves it.
func (c templateContext) expand(s string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	tmpl, err := template.New("").Option("missingkey=error").Parse(s)
	if err != nil {
		return s
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, c); err != nil {
		return s
	}
	return b.String()
}

// taskEnv is the environment every task gets besides its own: where it
// runs and which slot it fills, so a program can pick a port or a shard.
func (c templateContext) taskEnv() []string {
	return []string{
		"FLOTILLA_SERVICE_ID=" + c.Service.ID, "FLOTILLA_SERVICE_NAME=" + c.Service.Name,
		"FLOTILLA_NODE_ID=" + c.Node.ID, "FLOTILLA_NODE_HOSTNAME=" + c.Node.Hostname,
		"FLOTILLA_TASK_ID=" + c.Task.ID, "FLOTILLA_TASK_NAME=" + c.Task.Name, "FLOTILLA_TASK_SLOT=" + c.Task.Slot,
	}
}
