// Command e2eapp is the program the e2e tests run as a task: compiled
// static (CGO_ENABLED=0), it runs as a process-driver task or as an
// image's /app. It prints one line and runs until SIGTERM; with E2E_SERVE=1
// it also answers TCP connections (on $FLOTILLA_ADDR_80 when the process
// driver gives it an address, else on :80) with one line naming its
// task and the client, read from a PROXY protocol v1 header when
// E2E_PROXY=1, and UDP datagrams on the same port with the task and the
// payload.
//
// E2E_READ=path[,path...] prints "read PATH: CONTENT" (or the error) for
// each path at start;
// E2E_APPEND=path prints "data in PATH: CONTENT" (what earlier tasks left
// there) and appends "task TASK_ID" to it.
//
// "app healthcheck" is a health check: it fails when APP_HEALTHY=no is in
// the container's environment.
package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		if os.Getenv("APP_HEALTHY") == "no" {
			fmt.Println("APP_HEALTHY=no")
			os.Exit(1)
		}
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	fmt.Printf("hello from the flotilla e2e app, slot %s\n", os.Getenv("FLOTILLA_TASK_SLOT"))
	files()
	if os.Getenv("E2E_SERVE") == "1" {
		// The process driver names the addresses of the ports it gives;
		// in a container the app listens on its target port 80.
		tcp, udp := os.Getenv("FLOTILLA_ADDR_80"), os.Getenv("FLOTILLA_ADDR_80_UDP")
		if tcp == "" && udp == "" && os.Getenv("FLOTILLA_IP") == "" {
			tcp, udp = ":80", ":80"
		}
		// A process task on swarm networks is reached by name at its own
		// loopback address, on any port.
		addrs := []string{tcp}
		if ip := os.Getenv("FLOTILLA_IP"); ip != "" {
			addrs = append(addrs, net.JoinHostPort(ip, "80"))
		}
		for _, a := range addrs {
			if a == "" {
				continue
			}
			ln, err := net.Listen("tcp", a)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			go serve(ln)
		}
		if udp != "" {
			pc, err := net.ListenPacket("udp", udp)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			go echoUDP(pc)
		}
	}
	select {
	case <-sig:
	case <-time.After(10 * time.Minute):
	}
}

func serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go answer(c)
	}
}

// answer writes "task=ID node=ID client=ADDR" and keeps the connection
// open until the client closes it (tests watch open connections).
func answer(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	client := c.RemoteAddr().String()
	if os.Getenv("E2E_PROXY") == "1" {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		// PROXY TCP4 SRC DST SPORT DPORT
		if f := strings.Fields(line); len(f) == 6 && f[0] == "PROXY" {
			client = net.JoinHostPort(f[2], f[4])
		} else {
			client = "bad-proxy-header:" + strings.TrimSpace(line)
		}
	}
	me := fmt.Sprintf("task=%s node=%s client=%s", os.Getenv("FLOTILLA_TASK_ID"), os.Getenv("FLOTILLA_NODE_ID"), client)
	if os.Getenv("E2E_FRONT") == "1" {
		// A front end: the client's first line asks it to reach another
		// service by name.
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		fmt.Fprintf(c, "%s %s\n", me, front(strings.TrimSpace(line)))
		return
	}
	fmt.Fprintln(c, me)
	_, _ = r.WriteTo(c)
}

// echoUDP answers each datagram with "task=ID node=ID payload=PAYLOAD".
func echoUDP(pc net.PacketConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		reply := fmt.Sprintf("task=%s node=%s payload=%s", os.Getenv("FLOTILLA_TASK_ID"), os.Getenv("FLOTILLA_NODE_ID"), buf[:n])
		_, _ = pc.WriteTo([]byte(reply), from)
	}
}

// front runs one request of a front end: "lookup NAME" answers
// addrs=A,B (sorted as the resolver gave them); "dial NAME:PORT" connects
// and answers back_task=ID back_node=ID back_addr=IP:PORT with what the
// service reached answered. Failures answer err=WHY (no spaces).
func front(req string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := resolver()
	verb, arg, _ := strings.Cut(req, " ")
	fail := func(err error) string { return "err=" + strings.ReplaceAll(err.Error(), " ", "_") }
	switch verb {
	case "lookup":
		addrs, err := res.LookupHost(ctx, arg)
		if err != nil {
			return fail(err)
		}
		return "addrs=" + strings.Join(addrs, ",")
	case "dial":
		d := net.Dialer{Resolver: res}
		c, err := d.DialContext(ctx, "tcp", arg)
		if err != nil {
			return fail(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return fail(err)
		}
		out := "back_addr=" + c.RemoteAddr().String()
		for _, f := range strings.Fields(line) {
			if k, v, ok := strings.Cut(f, "="); ok && (k == "task" || k == "node") {
				out += " back_" + k + "=" + v
			}
		}
		return out
	}
	return "err=unknown_request"
}

// resolver is the task's resolver: the server FLOTILLA_DNS names for a
// process task (it shares the node's network), else the system's (in a
// container, the engine's embedded DNS).
func resolver() *net.Resolver {
	server := os.Getenv("FLOTILLA_DNS")
	if server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
}

// files does E2E_READ and E2E_APPEND.
func files() {
	for _, p := range strings.Split(os.Getenv("E2E_READ"), ",") {
		if p == "" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			fmt.Printf("read %s failed: %v\n", p, err)
		} else {
			fmt.Printf("read %s: %s\n", p, strings.TrimSpace(string(b)))
		}
	}
	if p := os.Getenv("E2E_APPEND"); p != "" {
		b, _ := os.ReadFile(p)
		fmt.Printf("data in %s: %s\n", p, strings.Join(strings.Fields(string(b)), " "))
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			_, err = fmt.Fprintf(f, "task %s\n", os.Getenv("FLOTILLA_TASK_ID"))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Printf("append to %s failed: %v\n", p, err)
		}
	}
}
