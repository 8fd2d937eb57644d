package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// backendBody is the response the mesh benchmark measures: 1 KiB.
var backendBody = []byte(strings.Repeat("x", 1023) + "\n")

// newBackendCommand is the task the mesh benchmark runs (hidden): an HTTP
// server on $FLOTILLA_ADDR_80 answering / with 1 KiB and /bulk with an
// endless stream, each answer naming its task in X-Task. It appends
// "TASK ADDR PID" to $BENCH_ADDR_FILE so the benchmark can also reach it
// directly.
func newBackendCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "backend",
		Short:  "The task the mesh benchmark runs",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr := os.Getenv("FLOTILLA_ADDR_80")
			if addr == "" {
				return fmt.Errorf("FLOTILLA_ADDR_80 is not set: run this as a task of a service publishing target port 80")
			}
			task := os.Getenv("FLOTILLA_TASK_ID")
			// On a host of its own (bench mesh --hosts) the task listens
			// on all its addresses, and names the one reached from outside.
			shown := os.Getenv("BENCH_LISTEN_HOST")
			if shown != "" {
				_, port, _ := net.SplitHostPort(addr)
				addr, shown = ":"+port, net.JoinHostPort(shown, port)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			if shown == "" {
				shown = ln.Addr().String()
			}
			if f := os.Getenv("BENCH_ADDR_FILE"); f != "" {
				af, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
				if err != nil {
					return err
				}
				fmt.Fprintf(af, "%s %s %d\n", task, shown, os.Getpid())
				af.Close()
			}
			mux := http.NewServeMux()
			mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("X-Task", task)
				_, _ = w.Write(backendBody)
			})
			mux.HandleFunc("/bulk", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Task", task)
				buf := make([]byte, 256<<10)
				for r.Context().Err() == nil {
					if _, err := w.Write(buf); err != nil {
						return
					}
				}
			})
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
			return nil
		},
	}
}
