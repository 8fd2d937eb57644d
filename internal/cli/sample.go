package cli

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/flotilla-org/flotilla/internal/sandbox"
)

// newSampleWebCommand is the sandbox's sample service: a tiny web server
// that says which task and node answered. Hidden: it is a program for
// tasks to run, not a command for users.
func newSampleWebCommand() *cobra.Command {
	var base int
	var addr, backend string
	cmd := &cobra.Command{
		Use:    "sample-web",
		Short:  "Serve a hello page naming the task and node (the sandbox's sample service)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			slot, _ := strconv.Atoi(os.Getenv("FLOTILLA_TASK_SLOT"))
			if addr == "" {
				addr = os.Getenv("FLOTILLA_ADDR_80") // published: the process driver's address for port 80
			}
			if ip := os.Getenv("FLOTILLA_IP"); addr == "" && ip != "" {
				addr = net.JoinHostPort(ip, "80") // on a network, reached by name
			}
			if addr == "" {
				addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(base+slot))
			}
			task, node := os.Getenv("FLOTILLA_TASK_NAME"), os.Getenv("FLOTILLA_NODE_HOSTNAME")
			mux := http.NewServeMux()
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "hello from %s on node %s\n", task, node)
				if backend != "" {
					fmt.Fprintf(w, "  %s, asked by name: %s\n", backend, askBackend(r.Context(), backend))
				}
				fmt.Printf("%s %s %s from %s\n", time.Now().UTC().Format(time.RFC3339), r.Method, r.URL.Path, r.RemoteAddr)
			})
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			fmt.Printf("serving on http://%s (task %s, node %s)\n", ln.Addr(), task, node)
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			if err := srv.Serve(ln); err != http.ErrServerClosed {
				return err
			}
			fmt.Println("stopped")
			return nil
		},
	}
	cmd.Flags().IntVar(&base, "port-base", sandbox.SamplePortBase, "listen on 127.0.0.1:port-base+slot")
	cmd.Flags().StringVar(&backend, "backend", "", "another service (NAME:PORT) to ask on each request, by name")
	cmd.Flags().StringVar(&addr, "addr", "", "listen address (default: $FLOTILLA_ADDR_80 when set, else 127.0.0.1:port-base+slot)")
	return cmd
}

// askBackend fetches the first line of another sample service's page,
// reached by its name on the task's networks.
func askBackend(ctx context.Context, backend string) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	dialer := &net.Dialer{Resolver: taskResolver()}
	c := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+backend+"/", nil)
	if err != nil {
		return err.Error()
	}
	resp, err := c.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	return strings.TrimSpace(line)
}

// taskResolver resolves names on the task's networks: through
// FLOTILLA_DNS for a process task (it shares the node's network), else
// the system's resolver (a container's is the engine's embedded DNS).
func taskResolver() *net.Resolver {
	server := os.Getenv("FLOTILLA_DNS")
	if server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
}
