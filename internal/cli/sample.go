package cli

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
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
	var base, port int
	var addr, backend string
	var secrets, configs []string
	cmd := &cobra.Command{
		Use:    "sample-web",
		Short:  "Serve a hello page naming the task and node (the sandbox's sample service)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			slot, _ := strconv.Atoi(os.Getenv("FLOTILLA_TASK_SLOT"))
			addr = sampleListenAddr(addr, port, base, slot)
			task, node := os.Getenv("FLOTILLA_TASK_NAME"), os.Getenv("FLOTILLA_NODE_HOSTNAME")
			mux := http.NewServeMux()
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "hello from %s on node %s\n", task, node)
				for _, c := range configs {
					fmt.Fprintf(w, "  %s\n", configLine(c))
				}
				for _, s := range secrets {
					fmt.Fprintf(w, "  %s\n", secretLine(s))
				}
				if backend != "" {
					first, rest, _ := strings.Cut(askBackend(r.Context(), backend), "\n")
					fmt.Fprintf(w, "  %s, asked by name: %s\n", backend, first)
					for _, l := range strings.Split(rest, "\n") {
						if l != "" {
							fmt.Fprintf(w, "  %s\n", l)
						}
					}
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
	flags := cmd.Flags()
	flags.IntVar(&base, "port-base", sandbox.SamplePortBase, "listen on 127.0.0.1:port-base+slot when run by hand")
	flags.IntVar(&port, "port", 0, "listen on the task's address for this port: $FLOTILLA_ADDR_PORT (published, process driver), else $FLOTILLA_IP:PORT (on a network, process driver), else :PORT (a container)")
	flags.StringVar(&backend, "backend", "", "another service (NAME:PORT) to ask on each request, by name; its page is shown")
	flags.StringVar(&addr, "addr", "", "listen address (default: see --port; without it $FLOTILLA_ADDR_80, $FLOTILLA_IP:80, else 127.0.0.1:port-base+slot)")
	flags.StringArrayVar(&secrets, "secret", nil, "a secret's target (repeatable): the page says it arrived, with its size and digest, never its value")
	flags.StringArrayVar(&configs, "config", nil, "a config's target (repeatable): the page shows its text")
	return cmd
}

// sampleListenAddr is where sample-web listens: addr when given, else
// the task's address for the port (80 without --port), else for a
// program run by hand 127.0.0.1:base+slot.
func sampleListenAddr(addr string, port, base, slot int) string {
	if addr != "" {
		return addr
	}
	p := strconv.Itoa(cmp.Or(port, 80))
	if a := os.Getenv("FLOTILLA_ADDR_" + p); a != "" {
		return a // published: the process driver's address for the port
	}
	if ip := os.Getenv("FLOTILLA_IP"); ip != "" {
		return net.JoinHostPort(ip, p) // on a network, reached by name
	}
	if port > 0 {
		return ":" + p // a container has its own network namespace
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(base+slot))
}

// askBackend fetches another sample service's page (its first lines),
// reached by its name on the task's networks, or says why it could not.
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
	var lines []string
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<10))
	for len(lines) < 20 && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) == 0 {
		return fmt.Sprintf("an empty page (%s)", resp.Status)
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
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
