// Command testapp is the program inside the docker driver tests' image. It
// is built static (CGO_ENABLED=0) and imported as the image's /app.
//
//	EXIT_CODE=n    exit at once with n
//	TICKS=n        print "tick 1".."tick n" every 20ms, then exit 0
//	IGNORE_TERM=1  ignore SIGTERM (then only SIGKILL stops it)
//	HEALTHY_FOR=d  create /healthy at start and remove it after duration d
//	LOOKUP=name    resolve name and print "lookup NAME: ADDRS" or the error
//	WRITE=path=s   write s to path, print "wrote PATH" or the error
//	READ=path      print "read PATH: CONTENT" or the error
//	MOUNT=path     print "mount PATH: TYPE OPTIONS" from /proc/mounts
//	CAT=p1,p2      print "cat P: CONTENT" (or the error) for each file
//
// "app healthcheck" is a health check: exit 0 if /healthy exists, else 1.
//
// Otherwise it prints "ready" and runs until SIGTERM, then prints
// "got SIGTERM" and exits 0.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		if _, err := os.Stat("/healthy"); err != nil {
			fmt.Println("not healthy:", err)
			os.Exit(1)
		}
		fmt.Println("healthy")
		return
	}
	if s := os.Getenv("HEALTHY_FOR"); s != "" {
		d, _ := time.ParseDuration(s)
		_ = os.WriteFile("/healthy", nil, 0o644)
		time.AfterFunc(d, func() { _ = os.Remove("/healthy") })
	}
	host, _ := os.Hostname()
	fmt.Printf("hello from testapp %s (host %s, FOO=%s, pwd %s)\n", strings.Join(os.Args[1:], " "), host, os.Getenv("FOO"), pwd())
	fmt.Fprintln(os.Stderr, "to stderr")
	if name := os.Getenv("LOOKUP"); name != "" {
		addrs, err := net.LookupHost(name)
		if err != nil {
			fmt.Printf("lookup %s failed: %v\n", name, err)
		} else {
			fmt.Printf("lookup %s: %s\n", name, strings.Join(addrs, " "))
		}
	}
	files()
	if list := os.Getenv("CAT"); list != "" {
		for _, p := range strings.Split(list, ",") {
			b, err := os.ReadFile(p)
			if err != nil {
				fmt.Printf("cat %s: %v\n", p, err)
				continue
			}
			fmt.Printf("cat %s: %s\n", p, b)
		}
	}
	if s := os.Getenv("EXIT_CODE"); s != "" {
		n, _ := strconv.Atoi(s)
		os.Exit(n)
	}
	if s := os.Getenv("TICKS"); s != "" {
		n, _ := strconv.Atoi(s)
		for i := 1; i <= n; i++ {
			time.Sleep(20 * time.Millisecond)
			fmt.Println("tick", i)
		}
		return
	}
	sig := make(chan os.Signal, 1)
	if os.Getenv("IGNORE_TERM") == "" {
		signal.Notify(sig, syscall.SIGTERM)
	} else {
		signal.Ignore(syscall.SIGTERM) // else Go's runtime exits with status 2
	}
	fmt.Println("ready")
	select {
	case <-sig:
		fmt.Println("got SIGTERM")
	case <-time.After(10 * time.Minute):
	}
}

func pwd() string {
	d, _ := os.Getwd()
	return d
}

// files does WRITE, READ and MOUNT, in that order.
func files() {
	if w := os.Getenv("WRITE"); w != "" {
		p, content, _ := strings.Cut(w, "=")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			fmt.Printf("write %s failed: %v\n", p, err)
		} else {
			fmt.Printf("wrote %s\n", p)
		}
	}
	if p := os.Getenv("READ"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			fmt.Printf("read %s failed: %v\n", p, err)
		} else {
			fmt.Printf("read %s: %s\n", p, b)
		}
	}
	if p := os.Getenv("MOUNT"); p != "" {
		b, _ := os.ReadFile("/proc/mounts")
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 4 && f[1] == p {
				fmt.Printf("mount %s: %s %s\n", p, f[2], f[3])
			}
		}
	}
}
