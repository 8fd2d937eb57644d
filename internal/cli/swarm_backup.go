package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flotilla-org/flotilla/internal/atomicfile"
	"github.com/flotilla-org/flotilla/internal/backupfile"
	"github.com/flotilla-org/flotilla/internal/engineapi"
)

func newSwarmBackupCommand(env *cliEnv) *cobra.Command {
	var (
		output string
		force  bool
	)
	cmd := &cobra.Command{
		Use:   "backup -o FILE",
		Short: "Write a consistent backup of the whole swarm state to a file, without stopping anything",
		Long: "Write a consistent backup of the whole swarm state (nodes, services, tasks, join tokens, root CA\n" +
			"and its key) to FILE, taken on the leader while the swarm keeps running. Restore it with\n" +
			"'swarm restore' after the loss of every manager. The file holds the CA key: keep it secret.",
		Args: noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		if output == "" {
			return errors.New("no output file: give one with -o FILE")
		}
		if !force {
			if _, err := os.Lstat(output); err == nil {
				return fmt.Errorf("%s already exists: choose another file, or use --force to replace it", output)
			}
		}
		api, err := env.client()
		if err != nil {
			return err
		}
		var data []byte
		err = rawCall(cmd.Context(), env, api.Dialer(), http.MethodGet, engineapi.PathSwarmBackup, nil, func(r io.Reader) error {
			var rerr error
			data, rerr = io.ReadAll(r)
			return rerr
		})
		if err != nil {
			return err
		}
		// Check what arrived before writing: a connection cut midway must
		// not leave a file that looks like a backup.
		h, _, err := backupfile.Decode(data)
		if err != nil {
			return fmt.Errorf("the daemon's answer is not a whole backup (%v); nothing was written, retry", err)
		}
		if err := atomicfile.Write(output, data, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Backup of swarm %s (Raft index %d, %d managers) written to %s (%d bytes).\n"+
			"It holds the swarm's root CA key and join tokens: keep it as secret as the managers' data dirs.\n",
			h.ClusterID, h.Index, len(h.Managers), output, len(data))
		return nil
	})
	flags := cmd.Flags()
	flags.StringVarP(&output, "output", "o", "", "File to write the backup to")
	flags.BoolVar(&force, "force", false, "Replace FILE if it exists")
	return cmd
}

func newSwarmRestoreCommand(env *cliEnv) *cobra.Command {
	var input, listenAddr, advertiseAddr string
	cmd := &cobra.Command{
		Use:   "restore -i FILE [OPTIONS]",
		Short: "Bring a swarm back from a backup on a node that is in no swarm",
		Long: "Make this node, which must be in no swarm, the only manager of the swarm saved in FILE by\n" +
			"'swarm backup': every node, service, task, join token and the root CA come back. Use it after\n" +
			"the loss of every manager; the lost managers show as Down and can be demoted and removed.",
		Args: noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		return runRestore(cmd, env, input, listenAddr, advertiseAddr)
	})
	flags := cmd.Flags()
	flags.StringVarP(&input, "input", "i", "", "Backup file to restore")
	flags.StringVar(&listenAddr, "listen-addr", defaultListenAddr, `Listen address (format: "<ip|interface>[:port]")`)
	flags.StringVar(&advertiseAddr, "advertise-addr", "", `Advertised address (format: "<ip|interface>[:port]"); use a lost manager's address to let surviving workers find this node`)
	return cmd
}

// runRestore serves 'swarm restore' and 'swarm init --force-new-cluster
// --from-backup'.
func runRestore(cmd *cobra.Command, env *cliEnv, input, listenAddr, advertiseAddr string) error {
	if input == "" {
		return errors.New("no backup file: give one with -i FILE")
	}
	data, err := os.ReadFile(input)
	if err != nil {
		return err
	}
	// Refuse a bad file here already, with the file's name.
	h, _, err := backupfile.Decode(data)
	if err != nil {
		return fmt.Errorf("%s: %v; nothing was changed", input, err)
	}
	listen, err := parseNodeAddr(listenAddr)
	if err != nil {
		return err
	}
	api, err := env.client()
	if err != nil {
		return err
	}
	q := url.Values{"listenAddr": {listen}}
	if a := strings.TrimSpace(advertiseAddr); a != "" {
		q.Set("advertiseAddr", a)
	}
	var nodeID string
	err = rawCall(cmd.Context(), env, api.Dialer(), http.MethodPost, engineapi.PathSwarmRestore+"?"+q.Encode(), data, func(r io.Reader) error {
		return json.NewDecoder(r).Decode(&nodeID)
	})
	if err != nil {
		return err
	}
	out, prog := cmd.OutOrStdout(), rootName(cmd)
	fmt.Fprintf(out, "Swarm %s restored from %s (taken %s, Raft index %d): current node (%s) is now its only manager.\n",
		h.ClusterID, input, h.Created.Format(time.RFC3339), h.Index, nodeID)
	if len(h.Managers) > 0 {
		var addrs []string
		for _, m := range h.Managers {
			addrs = append(addrs, m.Addr)
		}
		fmt.Fprintf(out, "The managers at backup time (%s) show as Down: remove them with '%s node demote' and '%s node rm'.\n"+
			"Workers that survived look for managers at those addresses; see docs/operations.md to point them here.\n",
			strings.Join(addrs, ", "), prog, prog)
	}
	fmt.Fprintf(out, "Join tokens are unchanged: add managers with '%s swarm join-token manager'.\n", prog)
	return nil
}

// rawCall sends one request to a flotilla extension route of the daemon
// and hands a successful answer's body to read.
func rawCall(ctx context.Context, env *cliEnv, dial func(context.Context) (net.Conn, error), method, path string, body []byte, read func(io.Reader) error) error {
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
	}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, method, "http://flotilla"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "flotilla-cli/"+Version)
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return errors.New(connectionHelp(err, env.host))
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e struct{ Message string }
		if json.Unmarshal(b, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("Error response from daemon: %s", e.Message)
	}
	return read(resp.Body)
}
