// Command e2eapp is the program the e2e tests run as a task: compiled
// static (CGO_ENABLED=0), it runs as a process-driver task or as an
// image's /app. It prints one line and runs until SIGTERM; with E2E_SERVE=1
// it also answers TCP connections (on $FLOTILLA_ADDR_80 when the process
// driver gives it an address, else on :80) with one line naming its
// task and the client, read from a PROXY protocol v1 header when
// E2E_PROXY=1, and UDP datagrams on the same port with the task and the
// payload.
//
// "app healthcheck" is a health check: it fails when APP_HEALTHY=no is in
// the container's environment.
package main

import (
	"bufio"
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
	if os.Getenv("E2E_SERVE") == "1" {
		// The process driver names the addresses of the ports it gives;
		// in a container the app listens on its target port 80.
		tcp, udp := os.Getenv("FLOTILLA_ADDR_80"), os.Getenv("FLOTILLA_ADDR_80_UDP")
		if tcp == "" && udp == "" {
			tcp, udp = ":80", ":80"
		}
		if tcp != "" {
			ln, err := net.Listen("tcp", tcp)
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
	fmt.Fprintf(c, "task=%s node=%s client=%s\n", os.Getenv("FLOTILLA_TASK_ID"), os.Getenv("FLOTILLA_NODE_ID"), client)
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
