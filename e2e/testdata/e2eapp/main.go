// Command e2eapp is the program inside the image that the e2e docker-driver
// test builds: it is compiled static (CGO_ENABLED=0), imported as the
// image's /app, prints one line and runs until SIGTERM.
//
// "app healthcheck" is a health check: it fails when APP_HEALTHY=no is in
// the container's environment.
package main

import (
	"fmt"
	"os"
	"os/signal"
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
	select {
	case <-sig:
	case <-time.After(10 * time.Minute):
	}
}
