package sandbox

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/internal/imageimport"
)

// SampleImageRepo is the repository of the image a sandbox makes for its
// sample when every node runs Docker: the flotilla binary alone (there is
// no registry to pull anything from). Each sandbox tags its own, after
// its directory, so that one sandbox's down leaves another's alone.
const SampleImageRepo = "flotilla-sandbox/sample"

// sampleImageRef is the sample image of the sandbox in dir.
func sampleImageRef(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return fmt.Sprintf("%s:%x", SampleImageRepo, sum[:6])
}

// sampleImageBinary is the flotilla binary's name in SampleImage, at its
// root, and the image's entrypoint.
const sampleImageBinary = "flotilla"

// engineHost is the Docker Engine the sandbox's daemons use by default.
const engineHost = "unix:///var/run/docker.sock"

// sampleImage returns the image to run the sample with the docker driver,
// making it from the binary (and recording it in the state file, for
// down to remove); or "" and why not (empty when simply no node offers
// Docker).
func sampleImage(ctx context.Context, api *client.Client, sb *Cluster) (string, string) {
	nodes, err := api.NodeList(ctx, client.NodeListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		return "", ""
	}
	for _, n := range nodes.Items {
		docker := false
		for _, p := range n.Description.Engine.Plugins {
			docker = docker || strings.EqualFold(p.Type, "Driver") && p.Name == "docker"
		}
		if !docker {
			return "", ""
		}
	}
	if err := StaticBinary(sb.Binary); err != nil {
		return "", err.Error()
	}
	engine, err := client.New(client.WithHost(engineHost))
	if err != nil {
		return "", err.Error()
	}
	defer engine.Close()
	ref := sampleImageRef(sb.Dir)
	sb.SampleImage = ref
	if err := sb.save(); err != nil {
		return "", err.Error()
	}
	if err := imageimport.Binary(ctx, engine, sb.Binary, ref, sampleImageBinary); err != nil {
		return "", "could not make the image: " + err.Error()
	}
	return ref, ""
}

// cleanupDocker removes what the sandbox's nodes left in the Docker
// Engine: containers of its nodes' tasks (a daemon stopped before it
// finished removing them) and the sample image it made.
func cleanupDocker(sb *Cluster) {
	engine, err := client.New(client.WithHost(engineHost))
	if err != nil {
		return
	}
	defer engine.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := engine.Ping(ctx, client.PingOptions{}); err != nil {
		return
	}
	for _, n := range sb.Nodes {
		if n.NodeID == "" {
			continue
		}
		ours := make(client.Filters).Add("label", "com.flotilla.managed=true").Add("label", "com.docker.swarm.node.id="+n.NodeID)
		if res, err := engine.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: ours}); err == nil {
			for _, c := range res.Items {
				_, _ = engine.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
			}
		}
		// The node's bridges for swarm networks, once their containers
		// are gone (a node stopped before removing its last task's).
		if res, err := engine.NetworkList(ctx, client.NetworkListOptions{Filters: ours}); err == nil {
			for _, nw := range res.Items {
				_, _ = engine.NetworkRemove(ctx, nw.ID, client.NetworkRemoveOptions{})
			}
		}
	}
	if sb.SampleImage != "" {
		_, _ = engine.ImageRemove(ctx, sb.SampleImage, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	}
}

// StaticBinary refuses a dynamically linked binary: alone in an image, it
// could not start.
func StaticBinary(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked and cannot run alone in an image (build it with CGO_ENABLED=0, as scripts/demo.sh does)", path)
		}
	}
	return nil
}

// ImportBinaryImage makes image ref holding only binary, as /flotilla and
// its entrypoint (there is no registry).
func ImportBinaryImage(ctx context.Context, engine *client.Client, binary, ref string) error {
	return imageimport.Binary(ctx, engine, binary, ref, "flotilla")
}
