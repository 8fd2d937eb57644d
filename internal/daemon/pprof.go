package daemon

import (
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
)

// servePprof serves Go's profiler on FLOTILLA_PPROF (a loopback
// host:port) when set: how benchmarks find where the time goes.
func (d *Daemon) servePprof() {
	addr := os.Getenv("FLOTILLA_PPROF")
	if addr == "" {
		return
	}
	host, p, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		d.log.Warn("FLOTILLA_PPROF must be a loopback host:port; profiler not started", "addr", addr)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/heap", pprof.Handler("heap").ServeHTTP)
	mux.HandleFunc("/debug/pprof/goroutine", pprof.Handler("goroutine").ServeHTTP)
	// Nodes on one machine (benchmarks) share the variable: each takes
	// the first free port from it, and logs which.
	port, _ := strconv.Atoi(p)
	for i := range 10 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port+i)))
		if err != nil {
			continue
		}
		d.log.Info("profiler listening", "addr", ln.Addr().String())
		go func() { _ = http.Serve(ln, mux) }()
		return
	}
	d.log.Warn("FLOTILLA_PPROF: no free port in the 10 from it; profiler not started", "addr", addr)
}
