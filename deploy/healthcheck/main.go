// Command fieldline-healthcheck is the containers' HEALTHCHECK probe: it GETs each URL given and exits 0 when
// every one answers 2xx within 3 seconds, 1 otherwise. The runtime images (distroless) have no shell, curl or
// wget, so the compose file runs this instead (e.g. `fieldline-healthcheck http://127.0.0.1:9464/readyz`).
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fieldline-healthcheck URL...")
		os.Exit(2)
	}
	c := &http.Client{Timeout: 3 * time.Second}
	for _, u := range os.Args[1:] {
		resp, err := c.Get(u)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			fmt.Fprintf(os.Stderr, "%s: %s\n", u, resp.Status)
			os.Exit(1)
		}
	}
}
